// eFax of a customer: book the option, say which of its numbers are fax numbers (where their
// faxes are mailed, who may send by mail), send a PDF or TIFF, and follow every fax in and out.
// Jobs still queued or sending are looked at again every few seconds until they end.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { API, del, get, patch, post, postForm } from '../api.js';
import { translator } from '../i18n.js';
import { ErrorAlert, Field, FormError, Loaded, Notice, Page, Table, common, confirmDelete, useForm, useLoad, yesNo } from '../ui.js';

const REFRESH_MS = 5000;
const PENDING = ['queued', 'sending'];

const t = translator('faxes', {
  de: {
    title: 'Fax',
    notBooked: 'eFax ist für diesen Kunden nicht gebucht. Mit eFax empfangen und senden Sie Faxe ohne Faxgerät: als PDF per E-Mail und hier im Portal.',
    book: 'eFax buchen',
    booked: 'eFax ist gebucht.',
    numbers: 'Faxnummern',
    number: 'Faxnummer',
    numberHint: 'Eine freie Rufnummer aus Ihren Rufnummernblöcken, auf die keine Nebenstelle reagiert.',
    emailTo: 'Empfangene Faxe per E-Mail an',
    emailHint: 'Adressen durch Komma getrennt; jedes Fax kommt als PDF.',
    senders: 'Senden per E-Mail erlaubt für',
    sendersHint: 'Absenderadressen durch Komma getrennt; sie mailen an <Zielnummer>@ die Fax-Domain der Plattform.',
    relay: 'G.711 der Anrufer in T.38 wandeln',
    relayHint: 'Der Medienrelay wandelt Faxe von Anschlüssen ohne T.38; nur bei Problemen mit alten Geräten nötig.',
    newNumber: 'Neue Faxnummer',
    editNumber: 'Faxnummer {{number}} bearbeiten',
    editButton: 'Bearbeiten',
    editLabel: '{{number}} bearbeiten',
    deleteLabel: '{{number}} löschen',
    send: 'Fax senden',
    from: 'Absender (Faxnummer)',
    to: 'Empfänger (Rufnummer)',
    file: 'Dokument (PDF oder TIFF, bis 10 MiB)',
    notify: 'Sendebericht per E-Mail an',
    queued: 'Fax {{id}} steht zum Senden bereit.',
    noNumber: 'Legen Sie zuerst eine Faxnummer an.',
    list: 'Faxe',
    when: 'Zeit',
    direction: 'Richtung',
    in: 'Eingang',
    out: 'Ausgang',
    remote: 'Gegenstelle',
    status: 'Status',
    pages: 'Seiten',
    attempts: 'Versuche',
    transport: 'Übertragung',
    document: 'Dokument',
    status_queued: 'wartet', status_sending: 'wird gesendet', status_sent: 'gesendet', status_received: 'empfangen', status_failed: 'fehlgeschlagen',
    nextAttempt: 'nächster Versuch {{at}}',
    refresh: 'Aktualisieren',
  },
  en: {
    title: 'Fax',
    notBooked: 'eFax is not booked for this customer. With eFax you receive and send faxes without a fax machine: as PDF by e-mail and here in the portal.',
    book: 'Book eFax',
    booked: 'eFax is booked.',
    numbers: 'Fax numbers',
    number: 'Fax number',
    numberHint: 'A free number of your number blocks that no extension answers.',
    emailTo: 'Mail faxes received to',
    emailHint: 'Addresses separated by commas; each fax comes as a PDF.',
    senders: 'May send by e-mail',
    sendersHint: "Sender addresses separated by commas; they mail to <number>@ the platform's fax domain.",
    relay: "Convert callers' G.711 to T.38",
    relayHint: 'The media relay converts faxes from lines without T.38; needed only for trouble with old machines.',
    newNumber: 'New fax number',
    editNumber: 'Edit fax number {{number}}',
    editButton: 'Edit',
    editLabel: 'Edit {{number}}',
    deleteLabel: 'Delete {{number}}',
    send: 'Send a fax',
    from: 'From (fax number)',
    to: 'To (number)',
    file: 'Document (PDF or TIFF, up to 10 MiB)',
    notify: 'Mail the status report to',
    queued: 'Fax {{id}} is queued for sending.',
    noNumber: 'Create a fax number first.',
    list: 'Faxes',
    when: 'Time',
    direction: 'Direction',
    in: 'In',
    out: 'Out',
    remote: 'Other party',
    status: 'Status',
    pages: 'Pages',
    attempts: 'Attempts',
    transport: 'Transport',
    document: 'Document',
    status_queued: 'queued', status_sending: 'sending', status_sent: 'sent', status_received: 'received', status_failed: 'failed',
    nextAttempt: 'next attempt {{at}}',
    refresh: 'Refresh',
  },
});

const addresses = (text) => text.split(/[\s,;]+/).filter(Boolean);
const time = (iso) => (iso ? iso.replace('T', ' ').slice(0, 16) : '');
const TRANSPORT = { audio: 'G.711', t38: 'T.38' };

function NumberForm({ cid, number, onDone }) {
  const f = useForm({
    number: '',
    email_to: number ? number.email_to.join(', ') : '',
    allowed_senders: number ? number.allowed_senders.join(', ') : '',
    relay_t38: number ? number.relay_t38 : false,
  });
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    const body = { email_to: addresses(v.email_to), allowed_senders: addresses(v.allowed_senders), relay_t38: v.relay_t38 };
    if (number) await patch(`/customers/${cid}/fax-numbers/${number.id}`, body);
    else await post(`/customers/${cid}/fax-numbers`, { ...body, number: v.number });
    setDone(true);
    if (!number) f.setValues({ ...v, number: '' });
    onDone();
  });
  const id = number ? `edit-fax-${number.id}` : 'new-fax-number';
  return html`<form onSubmit=${submit} class="form" aria-labelledby=${id}>
    <h2 id=${id}>${number ? t('editNumber', { number: number.number }) : t('newNumber')}</h2>
    <${FormError} error=${f.error} fields=${['number', 'email_to', 'allowed_senders', 'relay_t38']} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    ${!number && html`<${Field} label=${t('number')} name="number" required inputmode="tel" hint=${t('numberHint')} value=${f.values.number} onInput=${f.set('number')} error=${f.error} />`}
    <${Field} label=${t('emailTo')} name="email_to" hint=${t('emailHint')} value=${f.values.email_to} onInput=${f.set('email_to')} error=${f.error} />
    <${Field} label=${t('senders')} name="allowed_senders" hint=${t('sendersHint')} value=${f.values.allowed_senders} onInput=${f.set('allowed_senders')} error=${f.error} />
    <${Field} label=${t('relay')} name="relay_t38" type="checkbox" hint=${t('relayHint')} value=${f.values.relay_t38} onInput=${f.set('relay_t38')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${number ? common('save') : common('create')}</button>
  </form>`;
}

function SendFax({ cid, numbers, onDone }) {
  const f = useForm({ from: numbers[0].number, to: '', file: null, notify: '' });
  const [done, setDone] = useState('');
  const submit = f.submit(async (v) => {
    setDone('');
    const form = new FormData();
    form.append('from', v.from);
    form.append('to', v.to);
    if (v.file) form.append('file', v.file, v.file.name);
    if (v.notify) form.append('notify', v.notify);
    const r = await postForm(`/customers/${cid}/faxes`, form);
    setDone(t('queued', { id: r.id }));
    onDone();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="send-fax">
    <h2 id="send-fax">${t('send')}</h2>
    <${FormError} error=${f.error} fields=${['from', 'to', 'file', 'notify']} />
    ${done && html`<${Notice}>${done}<//>`}
    <${Field} label=${t('from')} name="from" type="select" options=${numbers.map((n) => [n.number, n.number])} value=${f.values.from} onInput=${f.set('from')} error=${f.error} />
    <${Field} label=${t('to')} name="to" required inputmode="tel" value=${f.values.to} onInput=${f.set('to')} error=${f.error} />
    <${Field} label=${t('file')} name="file" type="file" required accept="application/pdf,image/tiff,.pdf,.tif,.tiff" onInput=${f.set('file')} error=${f.error} />
    <${Field} label=${t('notify')} name="notify" type="email" value=${f.values.notify} onInput=${f.set('notify')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${t('send')}</button>
  </form>`;
}

function status(fax) {
  let text = t(`status_${fax.status}`);
  if (fax.cause) text += `: ${fax.cause}`;
  if (fax.status === 'queued' && fax.next_attempt_at) text += ` (${t('nextAttempt', { at: time(fax.next_attempt_at) })})`;
  return text;
}

function FaxList({ cid, faxes, reload }) {
  const pending = faxes.some((x) => PENDING.includes(x.status));
  useEffect(() => {
    if (!pending) return undefined;
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [pending, reload]);
  const link = (x) => x.document_name && html`<a href=${`${API}/customers/${cid}/faxes/${x.id}/document`} download>${x.document_name}</a>`;
  return html`<h2>${t('list')}</h2>
    <p><button type="button" class="secondary" onClick=${reload}>${t('refresh')}</button></p>
    <${Table} caption=${t('list')} head=${[t('when'), t('direction'), t('number'), t('remote'), t('status'), t('pages'), t('attempts'), t('transport'), t('document')]}
      rows=${faxes.map((x) => [time(x.completed_at || x.created_at), t(x.direction), x.our_number,
        x.remote_ident ? `${x.remote_number} (${x.remote_ident})` : x.remote_number, status(x), x.pages,
        x.direction === 'out' ? x.attempts : '–', TRANSPORT[x.transport] ?? '–', link(x)])} />`;
}

export function Faxes({ params }) {
  const { cid } = params;
  const state = useLoad(() => Promise.all([get(`/customers/${cid}`), get(`/customers/${cid}/fax-numbers`), get(`/customers/${cid}/faxes`)]), [cid]);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState(null);
  const act = (p) => {
    setError(null);
    p.then(state.reload, setError);
  };
  const remove = (n) => confirmDelete(n.number) && act(del(`/customers/${cid}/fax-numbers/${n.id}`));
  return html`<${Page} title=${t('title')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${state}>${([customer, numbers, faxes]) => html`
      ${customer.efax ? html`<p>${t('booked')}</p>` : html`<p>${t('notBooked')}</p>
        <p><button type="button" onClick=${() => act(patch(`/customers/${cid}`, { efax: true }))}>${t('book')}</button></p>`}
      <${FaxList} cid=${cid} faxes=${faxes.items} reload=${state.reload} />
      ${customer.efax && (numbers.items.length ? html`<${SendFax} cid=${cid} numbers=${numbers.items} onDone=${state.reload} />` : html`<p>${t('noNumber')}</p>`)}
      <h2>${t('numbers')}</h2>
      <${Table} caption=${t('numbers')} head=${[t('number'), t('emailTo'), t('senders'), t('relay'), common('actions')]}
        rows=${numbers.items.map((n) => [n.number, n.email_to.join(', ') || '–', n.allowed_senders.join(', ') || '–', yesNo(n.relay_t38), html`
          <button type="button" class="secondary" onClick=${() => setEditing(n)} aria-label=${t('editLabel', { number: n.number })}>${t('editButton')}</button>
          <button type="button" class="secondary" onClick=${() => remove(n)} aria-label=${t('deleteLabel', { number: n.number })}>${common('delete')}</button>`])} />
      ${editing && html`<${NumberForm} key=${editing.id} cid=${cid} number=${editing} onDone=${state.reload} />`}
      ${customer.efax && html`<${NumberForm} cid=${cid} onDone=${state.reload} />`}
    `}<//>
  <//>`;
}
