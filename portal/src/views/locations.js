// Locations of a customer (address, area code, opening hours, holiday state) and their head
// numbers (Kopfnummern): a number block must lie in its location's area code.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, patch, post } from '../api.js';
import { translator } from '../i18n.js';
import { MAX_HEAD_NUMBERS_PER_CUSTOMER } from '../limits.js';
import { isAdmin, useSession } from '../session.js';
import { ErrorAlert, Field, FormError, Loaded, Notice, Page, Table, common, confirmDelete, useForm, useLoad } from '../ui.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const BLOCKS = [1, 10, 100, 1000, 10000];

const t = translator('locations', {
  de: {
    title: 'Standorte',
    list: 'Standorte des Kunden',
    name: 'Name',
    street: 'Straße',
    postalCode: 'PLZ',
    city: 'Ort',
    areaCode: 'Vorwahl',
    areaCodeHint: 'Ortsnetzkennzahl mit 0, z. B. 069. Sie bestimmt die Rufnummern des Standorts.',
    state: 'Bundesland (Feiertage)',
    stateHint: 'Kürzel wie HE, BY, BE; leer: keine Feiertage.',
    hours: 'Öffnungszeiten',
    hoursHint: 'Je Tag Zeiträume wie 08:00-12:00, 13:00-17:00; leer: geschlossen.',
    day_mon: 'Montag', day_tue: 'Dienstag', day_wed: 'Mittwoch', day_thu: 'Donnerstag', day_fri: 'Freitag', day_sat: 'Samstag', day_sun: 'Sonntag',
    create: 'Neuer Standort',
    edit: 'Standort {{name}} bearbeiten',
    editButton: 'Bearbeiten',
    editName: '{{name}} bearbeiten',
    deleteName: '{{name}} löschen',
    numbersTitle: 'Rufnummern',
    numbers: 'Kopfnummern des Kunden',
    number: 'Rufnummer (E.164)',
    block: 'Blockgröße',
    location: 'Standort',
    count: '{{count}} von höchstens {{max}} Kopfnummern je Kunde.',
    full: 'Die Höchstzahl an Kopfnummern ist erreicht.',
    areaRule: 'Eine Rufnummer muss in der Vorwahl ihres Standorts liegen: für {{name}} ({{area}}) beginnt sie mit {{prefix}}.',
    newNumber: 'Neue Kopfnummer',
    deleteNumber: '{{number}} löschen',
    noLocation: 'Legen Sie zuerst einen Standort an.',
  },
  en: {
    title: 'Locations',
    list: "The customer's locations",
    name: 'Name',
    street: 'Street',
    postalCode: 'Postal code',
    city: 'City',
    areaCode: 'Area code',
    areaCodeHint: "The area code with its 0, e.g. 069. It decides the location's numbers.",
    state: 'State (public holidays)',
    stateHint: 'A code like HE, BY, BE; empty: no holidays.',
    hours: 'Opening hours',
    hoursHint: 'Per day intervals like 08:00-12:00, 13:00-17:00; empty: closed.',
    day_mon: 'Monday', day_tue: 'Tuesday', day_wed: 'Wednesday', day_thu: 'Thursday', day_fri: 'Friday', day_sat: 'Saturday', day_sun: 'Sunday',
    create: 'New location',
    edit: 'Edit location {{name}}',
    editButton: 'Edit',
    editName: 'Edit {{name}}',
    deleteName: 'Delete {{name}}',
    numbersTitle: 'Numbers',
    numbers: "The customer's head numbers",
    number: 'Number (E.164)',
    block: 'Block size',
    location: 'Location',
    count: '{{count}} of at most {{max}} head numbers per customer.',
    full: 'The customer holds the most head numbers allowed.',
    areaRule: "A number must lie in its location's area code: for {{name}} ({{area}}) it starts with {{prefix}}.",
    newNumber: 'New head number',
    deleteNumber: 'Delete {{number}}',
    noLocation: 'Create a location first.',
  },
});

// The E.164 prefix of an area code (069 -> +4969), as pbx_app.services.numbering.in_area reads it.
export const areaPrefix = (areaCode) => `+49${areaCode.slice(1)}`;

const hoursText = (hours) => Object.fromEntries(DAYS.map((d) => [d, (hours?.[d] ?? []).join(', ')]));
const hoursBody = (v) => Object.fromEntries(DAYS.map((d) => [d, v[d].trim() ? v[d].split(',').map((x) => x.trim()) : null]));

function LocationForm({ cid, location, onDone }) {
  const initial = location
    ? { name: location.name, street: location.street, postal_code: location.postal_code, city: location.city, area_code: location.area_code, state: location.state ?? '', ...hoursText(location.opening_hours) }
    : { name: '', street: '', postal_code: '', city: '', area_code: '', state: '', ...hoursText(null) };
  const f = useForm(initial);
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    const hours = hoursBody(v);
    const body = { name: v.name, street: v.street, postal_code: v.postal_code, city: v.city, state: v.state || null, opening_hours: Object.values(hours).some(Boolean) ? hours : null };
    if (location) await patch(`/customers/${cid}/locations/${location.id}`, body);
    else await post(`/customers/${cid}/locations`, { ...body, area_code: v.area_code });
    setDone(true);
    onDone();
  });
  const hid = location ? `edit-loc-${location.id}` : 'new-loc';
  const fields = ['name', 'street', 'postal_code', 'city', 'area_code', 'state', 'opening_hours'];
  return html`<form onSubmit=${submit} class="form" aria-labelledby=${hid}>
    <h2 id=${hid}>${location ? t('edit', { name: location.name }) : t('create')}</h2>
    <${FormError} error=${f.error} fields=${fields} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    <${Field} label=${t('name')} name="name" required value=${f.values.name} onInput=${f.set('name')} error=${f.error} />
    <${Field} label=${t('street')} name="street" required value=${f.values.street} onInput=${f.set('street')} error=${f.error} />
    <${Field} label=${t('postalCode')} name="postal_code" required inputmode="numeric" value=${f.values.postal_code} onInput=${f.set('postal_code')} error=${f.error} />
    <${Field} label=${t('city')} name="city" required value=${f.values.city} onInput=${f.set('city')} error=${f.error} />
    ${location
      ? html`<p><strong>${t('areaCode')}:</strong> ${location.area_code}</p>`
      : html`<${Field} label=${t('areaCode')} name="area_code" required inputmode="numeric" hint=${t('areaCodeHint')} value=${f.values.area_code} onInput=${f.set('area_code')} error=${f.error} />`}
    <${Field} label=${t('state')} name="state" hint=${t('stateHint')} value=${f.values.state} onInput=${f.set('state')} error=${f.error} />
    <fieldset>
      <legend>${t('hours')}</legend>
      <p class="hint">${t('hoursHint')}</p>
      ${f.error?.field === 'opening_hours' && html`<p class="field-error" role="alert">${f.error.message} <code class="code">${f.error.code}</code></p>`}
      ${DAYS.map((d) => html`<${Field} label=${t(`day_${d}`)} name=${d} value=${f.values[d]} onInput=${f.set(d)} />`)}
    </fieldset>
    <button type="submit" disabled=${f.busy}>${common('save')}</button>
  </form>`;
}

export function Locations({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const list = useLoad(() => get(`/customers/${cid}/locations`), [cid]);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState(null);
  const remove = (l) => {
    if (!confirmDelete(l.name)) return;
    setError(null);
    del(`/customers/${cid}/locations/${l.id}`).then(list.reload, setError);
  };
  const admin = isAdmin(me);
  return html`<${Page} title=${t('title')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${list}>${(d) => html`
      <${Table} caption=${t('list')} head=${[t('name'), t('street'), t('city'), t('areaCode'), t('state'), common('actions')]}
        rows=${d.items.map((l) => [l.name, l.street, `${l.postal_code} ${l.city}`, l.area_code, l.state ?? '–', admin && html`
          <button type="button" class="secondary" onClick=${() => setEditing(l)} aria-label=${t('editName', { name: l.name })}>${t('editButton')}</button>
          <button type="button" class="secondary" onClick=${() => remove(l)} aria-label=${t('deleteName', { name: l.name })}>${common('delete')}</button>`])} />
      ${admin && editing && html`<${LocationForm} key=${editing.id} cid=${cid} location=${editing} onDone=${list.reload} />`}
      ${admin && html`<${LocationForm} cid=${cid} onDone=${list.reload} />`}
    `}<//>
  <//>`;
}

function NewHeadNumber({ cid, locations, full, onDone }) {
  const f = useForm({ location_id: String(locations[0].id), number: '', block_size: '100' });
  const [done, setDone] = useState(false);
  const loc = locations.find((l) => String(l.id) === f.values.location_id) ?? locations[0];
  const prefix = areaPrefix(loc.area_code);
  const submit = f.submit(async (v) => {
    setDone(false);
    await post(`/customers/${cid}/head-numbers`, { location_id: Number(v.location_id), number: v.number, block_size: Number(v.block_size) });
    setDone(true);
    f.setValues({ ...v, number: '' });
    onDone();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="new-number">
    <h2 id="new-number">${t('newNumber')}</h2>
    ${full && html`<p class="alert" role="status">${t('full')}</p>`}
    <${FormError} error=${f.error} fields=${['location_id', 'number', 'block_size']} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    <${Field} label=${t('location')} name="location_id" type="select" options=${locations.map((l) => [String(l.id), `${l.name} (${l.area_code})`])} value=${f.values.location_id} onInput=${f.set('location_id')} error=${f.error} />
    <${Field} label=${t('number')} name="number" required inputmode="tel" placeholder=${`${prefix}…`}
      hint=${t('areaRule', { name: loc.name, area: loc.area_code, prefix })} value=${f.values.number} onInput=${f.set('number')} error=${f.error} />
    <${Field} label=${t('block')} name="block_size" type="select" options=${BLOCKS.map((b) => [String(b), String(b)])} value=${f.values.block_size} onInput=${f.set('block_size')} error=${f.error} />
    <button type="submit" disabled=${f.busy || full}>${common('create')}</button>
  </form>`;
}

export function HeadNumbers({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const state = useLoad(() => Promise.all([get(`/customers/${cid}/locations`), get(`/customers/${cid}/head-numbers?limit=1000`)]), [cid]);
  const [error, setError] = useState(null);
  const remove = (n) => {
    if (!confirmDelete(n.number)) return;
    setError(null);
    del(`/customers/${cid}/head-numbers/${n.id}`).then(state.reload, setError);
  };
  const admin = isAdmin(me);
  return html`<${Page} title=${t('numbersTitle')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${state}>${([locations, numbers]) => {
      const byId = Object.fromEntries(locations.items.map((l) => [l.id, l]));
      const full = numbers.items.length >= MAX_HEAD_NUMBERS_PER_CUSTOMER;
      return html`
        <p>${t('count', { count: numbers.items.length, max: MAX_HEAD_NUMBERS_PER_CUSTOMER })}</p>
        <${Table} caption=${t('numbers')} head=${[t('number'), t('block'), t('location'), t('areaCode'), common('actions')]}
          rows=${numbers.items.map((n) => [n.number, n.block_size, byId[n.location_id]?.name ?? n.location_id, n.area_code, admin && html`
            <button type="button" class="secondary" onClick=${() => remove(n)} aria-label=${t('deleteNumber', { number: n.number })}>${common('delete')}</button>`])} />
        ${admin && (locations.items.length ? html`<${NewHeadNumber} cid=${cid} locations=${locations.items} full=${full} onDone=${state.reload} />` : html`<p>${t('noLocation')}</p>`)}`;
    }}<//>
  <//>`;
}
