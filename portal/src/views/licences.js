// Licences: extensions beyond the base package's 5 are booked; each newly reached high-water
// mark costs an activation fee, which the API reports after the change.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get, put } from '../api.js';
import { translator } from '../i18n.js';
import { BASE_PACKAGE_EXTENSIONS, MAX_EXTENSIONS_PER_CUSTOMER } from '../limits.js';
import { isAdmin, useSession } from '../session.js';
import { Field, FormError, Loaded, Notice, Page, useForm, useLoad } from '../ui.js';

const t = translator('licences', {
  de: {
    title: 'Lizenzen',
    base: 'Basispaket',
    baseValue: '{{count}} Nebenstellen',
    booked: 'Gebuchte Lizenzen',
    total: 'Nebenstellen gesamt',
    used: 'Davon belegt',
    highWater: 'Höchststand (Aktivierungsgebühren bis hier bezahlt)',
    price: 'Monatspreis',
    change: 'Lizenzen ändern',
    newBooked: 'Gebuchte Lizenzen (zusätzlich zum Basispaket)',
    hint: 'Mindestens so viele, dass alle belegten Nebenstellen gedeckt sind ({{min}}); höchstens {{max}}.',
    changed: 'Gebucht: {{before}} → {{after}} Nebenstellen ab {{on}}; Aktivierungsgebühren: {{fees}} × = {{eur}} EUR.',
    save: 'Buchen',
  },
  en: {
    title: 'Licences',
    base: 'Base package',
    baseValue: '{{count}} extensions',
    booked: 'Booked licences',
    total: 'Extensions in all',
    used: 'In use',
    highWater: 'High-water mark (activation fees paid up to here)',
    price: 'Monthly price',
    change: 'Change licences',
    newBooked: 'Booked licences (on top of the base package)',
    hint: 'At least enough to cover every extension in use ({{min}}); at most {{max}}.',
    changed: 'Booked: {{before}} → {{after}} extensions from {{on}}; activation fees: {{fees}} × = {{eur}} EUR.',
    save: 'Book',
  },
});

export function Licences({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const state = useLoad(() => get(`/customers/${cid}`), [cid]);
  const f = useForm({ booked_licences: null });
  const [change, setChange] = useState(null);
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${state}>${(c) => {
      const value = f.values.booked_licences ?? String(c.booked_licences);
      const submit = f.submit(async () => {
        setChange(null);
        setChange(await put(`/customers/${cid}/licences`, { booked_licences: Number(value) }));
        state.reload();
      });
      const min = Math.max(0, c.extension_count - BASE_PACKAGE_EXTENSIONS);
      return html`
        <dl class="facts">
          <dt>${t('base')}</dt><dd>${t('baseValue', { count: BASE_PACKAGE_EXTENSIONS })}</dd>
          <dt>${t('booked')}</dt><dd>${c.booked_licences}</dd>
          <dt>${t('total')}</dt><dd>${c.booked_extensions}</dd>
          <dt>${t('used')}</dt><dd>${c.extension_count}</dd>
          <dt>${t('highWater')}</dt><dd>${c.activation_high_water_mark}</dd>
          <dt>${t('price')}</dt><dd>${c.monthly_price_eur} EUR</dd>
        </dl>
        ${isAdmin(me) && html`<form onSubmit=${submit} class="form" aria-labelledby="change">
          <h2 id="change">${t('change')}</h2>
          <${FormError} error=${f.error} fields=${['booked_licences']} />
          ${change && html`<${Notice}>${t('changed', { before: change.booked_extensions_before, after: change.booked_extensions_after, on: change.effective_on, fees: change.activation_fees, eur: change.activation_fee_eur })}<//>`}
          <${Field} label=${t('newBooked')} name="booked_licences" type="number" min=${min} max=${MAX_EXTENSIONS_PER_CUSTOMER - BASE_PACKAGE_EXTENSIONS}
            hint=${t('hint', { min, max: MAX_EXTENSIONS_PER_CUSTOMER - BASE_PACKAGE_EXTENSIONS })} value=${value} onInput=${f.set('booked_licences')} error=${f.error} />
          <button type="submit" disabled=${f.busy}>${t('save')}</button>
        </form>`}`;
    }}<//>
  <//>`;
}
