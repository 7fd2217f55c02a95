// Porting requests of a customer: draft one (numbers from another carrier onto a location),
// follow its states, take the next step. Who may take which step is the API's to say.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { get, post } from '../api.js';
import { translator } from '../i18n.js';
import { isAdmin, useSession } from '../session.js';
import { Field, FormError, Loaded, Notice, Page, Table, common, useForm, useLoad } from '../ui.js';

const STATES = ['draft', 'submitted', 'confirmed', 'completed', 'rejected', 'cancelled'];

const t = translator('porting', {
  de: {
    title: 'Portierungen',
    list: 'Portierungsaufträge',
    id: 'Nr.',
    numbers: 'Rufnummern',
    numbersHint: 'Je Zeile eine Rufnummer (E.164, in der Vorwahl des Standorts) und die Nebenstelle, bei der sie klingeln soll, z. B. „+4969777701 100“.',
    extensions: 'Klingelt bei',
    donor: 'Abgebender Anbieter',
    date: 'Wunschtermin',
    state: 'Status',
    location: 'Standort',
    create: 'Neuer Portierungsauftrag',
    created: 'Auftrag {{id}} angelegt (Entwurf).',
    open: 'Auftrag {{id}}',
    detail: 'Portierungsauftrag {{id}}',
    history: 'Verlauf',
    step: 'Nächster Schritt',
    toState: 'Neuer Status',
    note: 'Notiz',
    apply: 'Ausführen',
    back: 'Zurück zu den Portierungen',
    state_draft: 'Entwurf', state_submitted: 'Eingereicht', state_confirmed: 'Bestätigt', state_completed: 'Abgeschlossen', state_rejected: 'Abgelehnt', state_cancelled: 'Storniert',
    noLocation: 'Legen Sie zuerst einen Standort an.',
  },
  en: {
    title: 'Porting',
    list: 'Porting requests',
    id: 'No.',
    numbers: 'Numbers',
    numbersHint: "One number per line (E.164, in the location's area code) and the extension it is to ring, e.g. \"+4969777701 100\".",
    extensions: 'Rings',
    donor: 'Donor carrier',
    date: 'Requested date',
    state: 'State',
    location: 'Location',
    create: 'New porting request',
    created: 'Request {{id}} created (draft).',
    open: 'Request {{id}}',
    detail: 'Porting request {{id}}',
    history: 'History',
    step: 'Next step',
    toState: 'New state',
    note: 'Note',
    apply: 'Apply',
    back: 'Back to porting',
    state_draft: 'Draft', state_submitted: 'Submitted', state_confirmed: 'Confirmed', state_completed: 'Completed', state_rejected: 'Rejected', state_cancelled: 'Cancelled',
    noLocation: 'Create a location first.',
  },
});

function NewRequest({ cid, locations, onDone }) {
  const f = useForm({ location_id: String(locations[0].id), numbers: '', donor_carrier: '', requested_date: '' });
  const [done, setDone] = useState('');
  const submit = f.submit(async (v) => {
    setDone('');
    // "number extension" per line: the numbers to port and the extension each is to ring.
    const pairs = v.numbers.split('\n').map((line) => line.trim().split(/[\s,;=]+/)).filter((p) => p[0]);
    const numbers = pairs.map((p) => p[0]);
    const extensions = Object.fromEntries(pairs.filter((p) => p[1]).map((p) => [p[0], p[1]]));
    const r = await post(`/customers/${cid}/porting-requests`, { location_id: Number(v.location_id), numbers, extensions, donor_carrier: v.donor_carrier, requested_date: v.requested_date });
    setDone(t('created', { id: r.id }));
    onDone();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="new-port">
    <h2 id="new-port">${t('create')}</h2>
    <${FormError} error=${f.error} fields=${['location_id', 'numbers', 'extensions', 'donor_carrier', 'requested_date']} />
    ${done && html`<${Notice}>${done}<//>`}
    <${Field} label=${t('location')} name="location_id" type="select" options=${locations.map((l) => [String(l.id), `${l.name} (${l.area_code})`])} value=${f.values.location_id} onInput=${f.set('location_id')} error=${f.error} />
    <${Field} label=${t('numbers')} name="numbers" type="textarea" required hint=${t('numbersHint')} value=${f.values.numbers} onInput=${f.set('numbers')} error=${f.error} />
    <${Field} label=${t('donor')} name="donor_carrier" required value=${f.values.donor_carrier} onInput=${f.set('donor_carrier')} error=${f.error} />
    <${Field} label=${t('date')} name="requested_date" type="date" required value=${f.values.requested_date} onInput=${f.set('requested_date')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${common('create')}</button>
  </form>`;
}

export function PortingRequests({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const state = useLoad(() => Promise.all([get(`/customers/${cid}/locations`), get(`/customers/${cid}/porting-requests`)]), [cid]);
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${state}>${([locations, requests]) => {
      const byId = Object.fromEntries(locations.items.map((l) => [l.id, l.name]));
      return html`
        <${Table} caption=${t('list')} head=${[t('id'), t('numbers'), t('location'), t('donor'), t('date'), t('state')]}
          rows=${requests.items.map((r) => [html`<${Link} href=${`/customers/${cid}/porting/${r.id}`}>${t('open', { id: r.id })}<//>`, r.numbers.map((n) => (r.extensions[n] ? `${n} → ${r.extensions[n]}` : n)).join(', '), byId[r.location_id] ?? r.location_id, r.donor_carrier, r.requested_date, t(`state_${r.state}`)])} />
        ${isAdmin(me) && (locations.items.length ? html`<${NewRequest} cid=${cid} locations=${locations.items} onDone=${state.reload} />` : html`<p>${t('noLocation')}</p>`)}`;
    }}<//>
  <//>`;
}

export function PortingRequest({ params }) {
  const { cid, pid } = params;
  const { me } = useSession();
  const path = `/customers/${cid}/porting-requests/${pid}`;
  const state = useLoad(() => get(path), [path]);
  const f = useForm({ to_state: 'submitted', note: '' });
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    await post(`${path}/transitions`, v);
    setDone(true);
    state.reload();
  });
  return html`<${Page} title=${t('detail', { id: pid })}>
    <p><${Link} href=${`/customers/${cid}/porting`}>${t('back')}<//></p>
    <${Loaded} state=${state}>${(r) => html`
      <dl class="facts">
        <dt>${t('state')}</dt><dd>${t(`state_${r.state}`)}</dd>
        <dt>${t('numbers')}</dt><dd>${r.numbers.map((n) => (r.extensions[n] ? `${n} → ${r.extensions[n]}` : n)).join(', ')}</dd>
        <dt>${t('donor')}</dt><dd>${r.donor_carrier}</dd>
        <dt>${t('date')}</dt><dd>${r.requested_date}</dd>
      </dl>
      <${Table} caption=${t('history')} head=${[t('date'), t('state'), t('note')]}
        rows=${r.events.map((e) => [e.at.replace('T', ' ').slice(0, 19), `${e.from_state ? `${t(`state_${e.from_state}`)} → ` : ''}${t(`state_${e.to_state}`)}`, e.note])} />
      ${isAdmin(me) && html`<form onSubmit=${submit} class="form" aria-labelledby="step">
        <h2 id="step">${t('step')}</h2>
        <${FormError} error=${f.error} fields=${['to_state', 'note']} />
        ${done && html`<${Notice}>${common('saved')}<//>`}
        <${Field} label=${t('toState')} name="to_state" type="select" options=${STATES.map((s) => [s, t(`state_${s}`)])} value=${f.values.to_state} onInput=${f.set('to_state')} error=${f.error} />
        <${Field} label=${t('note')} name="note" value=${f.values.note} onInput=${f.set('note')} error=${f.error} />
        <button type="submit" disabled=${f.busy}>${t('apply')}</button>
      </form>`}`}<//>
  <//>`;
}
