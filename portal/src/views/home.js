// The start page: where each role begins.
import { html } from 'htm/preact';
import { Redirect } from 'wouter-preact';
import { useSession, ownCustomer } from '../session.js';

export default function Home() {
  const { me } = useSession();
  const cid = ownCustomer(me);
  return html`<${Redirect} to=${cid === null ? '/customers' : `/customers/${cid}`} replace />`;
}
