// The customer's audit trail: logins (also failed and throttled ones) and ported numbers.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { translator } from '../i18n.js';
import { Loaded, Page, Table, useLoad } from '../ui.js';

const PAGE = 100;

const t = translator('audit', {
  de: {
    title: 'Protokoll',
    list: 'Ereignisse, neueste zuerst',
    at: 'Zeit (UTC)',
    kind: 'Ereignis',
    email: 'E-Mail-Adresse',
    source: 'Quelle',
    detail: 'Einzelheiten',
    kind_login: 'Anmeldung',
    kind_login_failed: 'Anmeldung fehlgeschlagen',
    kind_login_throttled: 'Anmeldung gebremst',
    kind_ported_in: 'Rufnummer portiert (zu uns)',
    kind_ported_out: 'Rufnummer portiert (weg)',
    prev: 'Vorherige Seite',
    next: 'Nächste Seite',
  },
  en: {
    title: 'Audit trail',
    list: 'Events, newest first',
    at: 'Time (UTC)',
    kind: 'Event',
    email: 'E-mail address',
    source: 'Source',
    detail: 'Details',
    kind_login: 'Login',
    kind_login_failed: 'Failed login',
    kind_login_throttled: 'Login throttled',
    kind_ported_in: 'Number ported in',
    kind_ported_out: 'Number ported out',
    prev: 'Previous page',
    next: 'Next page',
  },
});

export function AuditEvents({ params }) {
  const { cid } = params;
  const [offset, setOffset] = useState(0);
  const state = useLoad(() => get(`/customers/${cid}/audit-events?limit=${PAGE}&offset=${offset}`), [cid, offset]);
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${state}>${(d) => html`
      <${Table} caption=${t('list')} head=${[t('at'), t('kind'), t('email'), t('source'), t('detail')]}
        rows=${d.items.map((e) => [e.at.replace('T', ' ').slice(0, 19), t(`kind_${e.kind}`), e.email, e.source, e.detail])} />
      <div class="pager">
        <button type="button" class="secondary" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>${t('prev')}</button>
        <button type="button" class="secondary" disabled=${d.items.length < PAGE} onClick=${() => setOffset(offset + PAGE)}>${t('next')}</button>
      </div>`}<//>
  <//>`;
}
