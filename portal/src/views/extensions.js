// Extensions of a customer: the list with the count against the booked extensions (known before
// one runs into the limit), new extensions, and one extension's page: its settings and devices.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { del, get, patch, post, upload } from '../api.js';
import { translator } from '../i18n.js';
import { DEVICES_PER_EXTENSION, DEVICES_PER_EXTENSION_BUSINESS, MAX_EXTENSIONS_PER_CUSTOMER } from '../limits.js';
import { isAdmin, useSession } from '../session.js';
import { ErrorAlert, Field, FormError, Loaded, Notice, Page, Table, common, confirmDelete, useForm, useLoad, yesNo } from '../ui.js';

const PAGE = 100;

const t = translator('extensions', {
  de: {
    title: 'Nebenstellen',
    list: 'Nebenstellen {{from}}–{{to}}',
    number: 'Nebenstelle',
    name: 'Name',
    location: 'Standort',
    geoNumber: 'Durchwahl (E.164)',
    geoHint: 'Optional: eine Rufnummer aus einem Rufnummernblock des Standorts, z. B. +4969123456100.',
    devices: 'Geräte',
    businessOption: 'Business Option',
    businessHint: 'Bis zu 3 Geräte und das Browser-Telefon; ohne: 1 Gerät.',
    create: 'Neue Nebenstelle',
    created: 'Nebenstelle {{number}} angelegt.',
    count: '{{count}} von {{max}} gebuchten Nebenstellen belegt (Obergrenze {{hard}} je Kunde).',
    full: 'Alle gebuchten Nebenstellen sind belegt: Buchen Sie zuerst weitere Lizenzen.',
    bookMore: 'Lizenzen buchen',
    noLocation: 'Legen Sie zuerst einen Standort an.',
    prev: 'Vorherige Seite',
    next: 'Nächste Seite',
    open: 'Öffnen',
    rules: 'Anrufregeln',
    detail: 'Nebenstelle {{number}}',
    settings: 'Einstellungen',
    callerId: 'Rufnummernanzeige',
    callerIdHint: 'Eine Rufnummer des Kunden; leer für die Durchwahl bzw. die Standardanzeige.',
    clir: 'Rufnummer unterdrücken (CLIR)',
    back: 'Zurück zu den Nebenstellen',
    deviceList: 'Geräte dieser Nebenstelle',
    devicesUsed: '{{count}} von {{max}} Geräten ({{why}})',
    withOption: 'mit Business Option',
    withoutOption: 'ohne Business Option',
    devicesFull: 'Diese Nebenstelle hat schon so viele Geräte, wie sie haben darf.',
    addDevice: 'Gerät hinzufügen',
    sipUser: 'SIP-Benutzername',
    sipUserHint: 'Optional; leer: wird vergeben.',
    sipPassword: 'SIP-Passwort',
    sipPasswordHint: 'Optional; leer: ein sicheres wird erzeugt.',
    mac: 'MAC-Adresse (Provisionierung)',
    model: 'Modell',
    certified: 'Zertifiziert',
    secret: 'SIP-Zugangsdaten – das Passwort wird nur jetzt angezeigt:',
    newPassword: 'Neues Passwort',
    newPasswordFor: 'Neues Passwort für {{user}}',
    claim: 'Provisionierungs-Link',
    claimFor: 'Provisionierungs-Link für {{user}}',
    claimed: 'Einmal-Link für das Telefon (gültig bis {{until}}); das Telefon hängt seinen Dateinamen an. Ins Telefon, den DHCP-Server oder den Umleitungsdienst des Herstellers eintragen:',
    removeDevice: '{{user}} löschen',
    deleteExt: 'Nebenstelle {{number}} löschen',
    importTitle: 'Nebenstellen importieren',
    importFile: 'Datei (CSV oder JSON)',
    importHint: 'CSV mit Kopfzeile number,location_id (oder location),display_name,geo_number; oder JSON: eine Liste solcher Objekte. Ist eine Zeile falsch, wird nichts importiert.',
    importButton: 'Importieren',
    imported: '{{created}} Nebenstellen angelegt; jetzt {{count}}.',
    importRow: 'Zeile {{row}}',
    mine: 'Ihre Nebenstellen',
    mineNone: 'Ihnen ist noch keine Nebenstelle zugeordnet; Ihr Administrator ordnet sie zu.',
  },
  en: {
    title: 'Extensions',
    list: 'Extensions {{from}}–{{to}}',
    number: 'Extension',
    name: 'Name',
    location: 'Location',
    geoNumber: 'Direct number (E.164)',
    geoHint: "Optional: a number from one of the location's number blocks, e.g. +4969123456100.",
    devices: 'Devices',
    businessOption: 'Business Option',
    businessHint: 'Up to 3 devices and the browser phone; without: 1 device.',
    create: 'New extension',
    created: 'Extension {{number}} created.',
    count: '{{count}} of {{max}} booked extensions in use (at most {{hard}} per customer).',
    full: 'All booked extensions are in use: book more licences first.',
    bookMore: 'Book licences',
    noLocation: 'Create a location first.',
    prev: 'Previous page',
    next: 'Next page',
    open: 'Open',
    rules: 'Call rules',
    detail: 'Extension {{number}}',
    settings: 'Settings',
    callerId: 'Caller ID',
    callerIdHint: "One of the customer's numbers; empty for the direct number or the default.",
    clir: 'Withhold the number (CLIR)',
    back: 'Back to the extensions',
    deviceList: 'Devices of this extension',
    devicesUsed: '{{count}} of {{max}} devices ({{why}})',
    withOption: 'with the Business Option',
    withoutOption: 'without the Business Option',
    devicesFull: 'This extension has as many devices as it may have.',
    addDevice: 'Add a device',
    sipUser: 'SIP user name',
    sipUserHint: 'Optional; empty: one is assigned.',
    sipPassword: 'SIP password',
    sipPasswordHint: 'Optional; empty: a strong one is generated.',
    mac: 'MAC address (provisioning)',
    model: 'Model',
    certified: 'Certified',
    secret: 'SIP credentials – the password is shown only now:',
    newPassword: 'New password',
    newPasswordFor: 'New password for {{user}}',
    removeDevice: 'Delete {{user}}',
    claim: 'Provisioning link',
    claimFor: 'Provisioning link for {{user}}',
    claimed: 'One-time link for the phone (valid until {{until}}); the phone appends its file name. Enter it in the phone, the DHCP server or the vendor\'s redirection service:',
    deleteExt: 'Delete extension {{number}}',
    importTitle: 'Import extensions',
    importFile: 'File (CSV or JSON)',
    importHint: 'CSV with the header number,location_id (or location),display_name,geo_number; or JSON: a list of such objects. One bad row and nothing is imported.',
    importButton: 'Import',
    imported: '{{created}} extensions created; {{count}} now.',
    importRow: 'Row {{row}}',
    mine: 'Your extensions',
    mineNone: 'No extension is assigned to you yet; your administrator assigns them.',
  },
});

const locationName = (locations, id) => locations.find((l) => l.id === id)?.name ?? id;
// R4: devices per extension, by its Business Option.
const maxDevices = (business) => (business ? DEVICES_PER_EXTENSION_BUSINESS : DEVICES_PER_EXTENSION);

function NewExtension({ cid, customer, locations, onDone }) {
  const f = useForm({ location_id: locations[0] ? String(locations[0].id) : '', number: '', display_name: '', geo_number: '', business_option: customer.business_option });
  const [done, setDone] = useState('');
  if (!locations.length) return html`<p>${t('noLocation')} <${Link} href=${`/customers/${cid}/locations`}>${common('create')}<//></p>`;
  const full = customer.extension_count >= customer.booked_extensions;
  const submit = f.submit(async (v) => {
    setDone('');
    const x = await post(`/customers/${cid}/extensions`, { ...v, location_id: Number(v.location_id), geo_number: v.geo_number || null });
    setDone(t('created', { number: x.number }));
    f.setValues({ ...v, number: '', display_name: '', geo_number: '' });
    onDone();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="new-ext">
    <h2 id="new-ext">${t('create')}</h2>
    ${full && html`<p class="alert" role="status">${t('full')} <${Link} href=${`/customers/${cid}/licences`}>${t('bookMore')}<//></p>`}
    <${FormError} error=${f.error} fields=${['location_id', 'number', 'display_name', 'geo_number', 'business_option']} />
    ${done && html`<${Notice}>${done}<//>`}
    <${Field} label=${t('location')} name="location_id" type="select" options=${locations.map((l) => [String(l.id), `${l.name} (${l.area_code})`])} value=${f.values.location_id} onInput=${f.set('location_id')} error=${f.error} />
    <${Field} label=${t('number')} name="number" required inputmode="numeric" value=${f.values.number} onInput=${f.set('number')} error=${f.error} />
    <${Field} label=${t('name')} name="display_name" value=${f.values.display_name} onInput=${f.set('display_name')} error=${f.error} />
    <${Field} label=${t('geoNumber')} name="geo_number" hint=${t('geoHint')} value=${f.values.geo_number} onInput=${f.set('geo_number')} error=${f.error} />
    <${Field} label=${t('businessOption')} name="business_option" type="checkbox" hint=${t('businessHint')} value=${f.values.business_option} onInput=${f.set('business_option')} error=${f.error} />
    <button type="submit" disabled=${f.busy || full}>${common('create')}</button>
  </form>`;
}

function ImportExtensions({ cid, onDone }) {
  const [file, setFile] = useState(null);
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    setResult(null);
    const typed = new File([file], file.name, { type: /\.json$/i.test(file.name) ? 'application/json' : 'text/csv' });
    try {
      setResult(await upload(`/customers/${cid}/extensions/import`, typed));
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const rows = error?.error?.rows ?? [];
  return html`<form onSubmit=${submit} class="form" aria-labelledby="import">
    <h2 id="import">${t('importTitle')}</h2>
    <${ErrorAlert} error=${error} />
    ${rows.length > 0 && html`<ul class="field-error">${rows.slice(0, 20).map((r) => html`<li>${t('importRow', { row: r.row })}: ${r.message} <code class="code">${r.code}</code></li>`)}</ul>`}
    ${result && html`<${Notice}>${t('imported', { created: result.created, count: result.extension_count })}<//>`}
    <div class="field">
      <label for="import-file">${t('importFile')}</label>
      <input id="import-file" type="file" accept=".csv,.json,text/csv,application/json" aria-describedby="import-hint" onChange=${(e) => setFile(e.target.files[0] ?? null)} />
      <p class="hint" id="import-hint">${t('importHint')}</p>
    </div>
    <button type="submit" disabled=${busy || !file}>${t('importButton')}</button>
  </form>`;
}

export function Extensions({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const [offset, setOffset] = useState(0);
  const state = useLoad(
    () => Promise.all([get(`/customers/${cid}`), get(`/customers/${cid}/locations`), get(`/customers/${cid}/extensions?limit=${PAGE}&offset=${offset}`)]),
    [cid, offset],
  );
  const [error, setError] = useState(null);
  const remove = (x) => {
    if (!confirmDelete(x.number)) return;
    setError(null);
    del(`/customers/${cid}/extensions/${x.id}`).then(state.reload, setError);
  };
  return html`<${Page} title=${t('title')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${state}>${([customer, locations, exts]) => html`
      <p>${t('count', { count: customer.extension_count, max: customer.booked_extensions, hard: MAX_EXTENSIONS_PER_CUSTOMER.toLocaleString() })}</p>
      <${Table} caption=${t('list', { from: offset + 1, to: offset + exts.items.length })}
        head=${[t('number'), t('name'), t('location'), t('geoNumber'), t('businessOption'), t('devices'), common('actions')]}
        rows=${exts.items.map((x) => [
          html`<${Link} href=${`/customers/${cid}/extensions/${x.id}`}>${x.number}<//>`,
          x.display_name,
          locationName(locations.items, x.location_id),
          x.geo_number ?? '–',
          yesNo(x.business_option),
          `${x.device_count} / ${maxDevices(x.business_option)}`,
          html`<${Link} href=${`/customers/${cid}/extensions/${x.id}/rules`}>${t('rules')}<//>
            ${isAdmin(me) && html` <button type="button" class="secondary" onClick=${() => remove(x)} aria-label=${t('deleteExt', { number: x.number })}>${common('delete')}</button>`}`,
        ])} />
      <div class="pager">
        <button type="button" class="secondary" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>${t('prev')}</button>
        <button type="button" class="secondary" disabled=${exts.items.length < PAGE} onClick=${() => setOffset(offset + PAGE)}>${t('next')}</button>
      </div>
      ${isAdmin(me) && html`<${NewExtension} cid=${cid} customer=${customer} locations=${locations.items} onDone=${state.reload} />`}
      ${isAdmin(me) && html`<${ImportExtensions} cid=${cid} onDone=${state.reload} />`}
    `}<//>
  <//>`;
}

// The extension as the API holds it, in the form's terms.
function settingsOf(ext) {
  return {
    location_id: ext.location_id,
    display_name: ext.display_name,
    geo_number: ext.geo_number ?? null,
    caller_id: ext.caller_id ?? null,
    clir: ext.clir,
    business_option: ext.business_option,
  };
}

function ExtensionSettings({ cid, ext, locations, onSaved }) {
  const f = useForm({
    location_id: String(ext.location_id),
    display_name: ext.display_name,
    geo_number: ext.geo_number ?? '',
    caller_id: ext.caller_id ?? '',
    clir: ext.clir,
    business_option: ext.business_option,
  });
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    // Only what this admin changed: a field left alone must not undo another admin's change
    // made since the page loaded (the Business Option booked meanwhile, say).
    const wanted = { ...v, location_id: Number(v.location_id), geo_number: v.geo_number || null, caller_id: v.caller_id || null };
    const before = settingsOf(ext);
    const changed = Object.fromEntries(Object.entries(wanted).filter(([k, value]) => value !== before[k]));
    await patch(`/customers/${cid}/extensions/${ext.id}`, changed);
    setDone(true);
    onSaved();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="ext-settings">
    <h2 id="ext-settings">${t('settings')}</h2>
    <${FormError} error=${f.error} fields=${Object.keys(f.values)} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    <${Field} label=${t('location')} name="location_id" type="select" options=${locations.map((l) => [String(l.id), `${l.name} (${l.area_code})`])} value=${f.values.location_id} onInput=${f.set('location_id')} error=${f.error} />
    <${Field} label=${t('name')} name="display_name" value=${f.values.display_name} onInput=${f.set('display_name')} error=${f.error} />
    <${Field} label=${t('geoNumber')} name="geo_number" hint=${t('geoHint')} value=${f.values.geo_number} onInput=${f.set('geo_number')} error=${f.error} />
    <${Field} label=${t('callerId')} name="caller_id" hint=${t('callerIdHint')} value=${f.values.caller_id} onInput=${f.set('caller_id')} error=${f.error} />
    <${Field} label=${t('clir')} name="clir" type="checkbox" value=${f.values.clir} onInput=${f.set('clir')} error=${f.error} />
    <${Field} label=${t('businessOption')} name="business_option" type="checkbox" hint=${t('businessHint')} value=${f.values.business_option} onInput=${f.set('business_option')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${common('save')}</button>
  </form>`;
}

function Devices({ cid, ext, admin, onChanged }) {
  const base = `/customers/${cid}/extensions/${ext.id}/devices`;
  const list = useLoad(() => get(base), [base]);
  const f = useForm({ sip_username: '', sip_password: '', mac: '', model: '' });
  const [secret, setSecret] = useState(null);
  const [claim, setClaim] = useState(null);
  const [error, setError] = useState(null);
  const business = ext.business_option;
  const max = maxDevices(business);
  const changed = () => {
    list.reload();
    onChanged();
  };
  const submit = f.submit(async (v) => {
    const body = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x || null]));
    setSecret(await post(base, body));
    f.setValues({ sip_username: '', sip_password: '', mac: '', model: '' });
    changed();
  });
  const reset = async (d) => {
    setError(null);
    await post(`${base}/${d.id}/password`, {}).then(setSecret, setError);
  };
  // Phones without a vendor certificate prove themselves once with this link (issue 18).
  const provision = async (d) => {
    setError(null);
    await post(`${base}/${d.id}/claim-token`, {}).then(setClaim, setError);
  };
  const remove = (d) => {
    if (!confirmDelete(d.sip_username)) return;
    setError(null);
    del(`${base}/${d.id}`).then(changed, setError);
  };
  return html`<section aria-labelledby="devices">
    <h2 id="devices">${t('devices')}</h2>
    <${ErrorAlert} error=${error} />
    ${secret && html`<div class="secret" role="status"><p>${t('secret')}</p>
      <code>${secret.sip_username} / ${secret.sip_password} @ ${secret.sip_domain}</code></div>`}
    ${claim && html`<div class="secret" role="status"><p>${t('claimed', { until: new Date(claim.expires_at).toLocaleString() })}</p>
      <code>${claim.url}</code></div>`}
    <${Loaded} state=${list}>${(d) => {
      const full = d.items.length >= max;
      return html`
        <p>${t('devicesUsed', { count: d.items.length, max, why: business ? t('withOption') : t('withoutOption') })}</p>
        <${Table} caption=${t('deviceList')} head=${[t('sipUser'), t('mac'), t('model'), t('certified'), common('actions')]}
          rows=${d.items.map((x) => [x.sip_username, x.mac ?? '–', x.model ?? '–', yesNo(x.certified), admin && html`
            <button type="button" class="secondary" onClick=${() => reset(x)} aria-label=${t('newPasswordFor', { user: x.sip_username })}>${t('newPassword')}</button>
            ${x.certified && x.mac && html`<button type="button" class="secondary" onClick=${() => provision(x)} aria-label=${t('claimFor', { user: x.sip_username })}>${t('claim')}</button>`}
            <button type="button" class="secondary" onClick=${() => remove(x)} aria-label=${t('removeDevice', { user: x.sip_username })}>${common('delete')}</button>`])} />
        ${admin && html`<form onSubmit=${submit} class="form" aria-labelledby="add-device">
          <h3 id="add-device">${t('addDevice')}</h3>
          ${full && html`<p class="alert" role="status">${t('devicesFull')}</p>`}
          <${FormError} error=${f.error} fields=${['sip_username', 'sip_password', 'mac', 'model']} />
          <${Field} label=${t('sipUser')} name="sip_username" hint=${t('sipUserHint')} value=${f.values.sip_username} onInput=${f.set('sip_username')} error=${f.error} />
          <${Field} label=${t('sipPassword')} name="sip_password" type="password" autocomplete="new-password" hint=${t('sipPasswordHint')} value=${f.values.sip_password} onInput=${f.set('sip_password')} error=${f.error} />
          <${Field} label=${t('mac')} name="mac" value=${f.values.mac} onInput=${f.set('mac')} error=${f.error} />
          <${Field} label=${t('model')} name="model" value=${f.values.model} onInput=${f.set('model')} error=${f.error} />
          <button type="submit" disabled=${f.busy || full}>${t('addDevice')}</button>
        </form>`}`;
    }}<//>
  </section>`;
}

export function Extension({ params }) {
  const { cid, eid } = params;
  const { me } = useSession();
  const state = useLoad(() => Promise.all([get(`/customers/${cid}/locations`), get(`/customers/${cid}/extensions/${eid}`)]), [cid, eid]);
  const ext = state.data?.[1];
  return html`<${Page} title=${ext ? t('detail', { number: ext.number }) : t('title')}>
    <p><${Link} href=${`/customers/${cid}/extensions`}>${t('back')}<//> · <${Link} href=${`/customers/${cid}/extensions/${eid}/rules`}>${t('rules')}<//></p>
    <${Loaded} state=${state}>${([locations, x]) => html`
      ${isAdmin(me) && html`<${ExtensionSettings} cid=${cid} ext=${x} locations=${locations.items} onSaved=${state.reload} />`}
      <${Devices} cid=${cid} ext=${x} admin=${isAdmin(me)} onChanged=${state.reload} />
    `}<//>
  <//>`;
}

// A user's own extensions (GET /me names them): their call rules and devices.
export function MyExtensions({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const ids = me.extension_ids;
  const state = useLoad(() => Promise.all(ids.map((id) => get(`/customers/${cid}/extensions/${id}`))), [cid, ids.join()]);
  return html`<${Page} title=${t('mine')}>
    <${Loaded} state=${state}>${(exts) => html`<${Table} caption=${t('mine')} empty=${t('mineNone')}
      head=${[t('number'), t('name'), t('geoNumber'), t('devices'), common('actions')]}
      rows=${exts.map((x) => [
        html`<${Link} href=${`/customers/${cid}/extensions/${x.id}`}>${x.number}<//>`,
        x.display_name,
        x.geo_number ?? '–',
        x.device_count,
        html`<${Link} href=${`/customers/${cid}/extensions/${x.id}/rules`}>${t('rules')}<//>`,
      ])} />`}<//>
  <//>`;
}
