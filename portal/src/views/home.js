// The start page: where each role begins (the operator: all customers; an admin: the
// customer's overview; a user: their extensions).
import { html } from 'htm/preact';
import { Redirect } from 'wouter-preact';
import { useSession, ownCustomer } from '../session.js';

export default function Home() {
  const { me } = useSession();
  const cid = ownCustomer(me);
  let to = `/customers/${cid}`;
  if (cid === null) to = '/customers';
  else if (me.role === 'user') to = `/customers/${cid}/extensions`;
  return html`<${Redirect} to=${to} replace />`;
}
