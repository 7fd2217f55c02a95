// Customers: the operator's list and new customers; one customer's overview (contract, counts
// against the limits) for everyone who may see it.
import { html } from 'htm/preact';
import { Link } from 'wouter-preact';
import { get, patch, post } from '../api.js';
import { translator } from '../i18n.js';
import { MAX_HEAD_NUMBERS_PER_CUSTOMER } from '../limits.js';
import { isOperator, useSession } from '../session.js';
import { Field, FormError, Loaded, Notice, Page, Table, useForm, useLoad, yesNo, common } from '../ui.js';
import { useState } from 'preact/hooks';

const TARIFFS = ['basic', 'standard', 'premium'];
// Discounts on the base package (combinable); the form holds one checkbox each.
const DISCOUNTS = ['mobile', 'all_ip'];
const discountsOf = (v) => DISCOUNTS.filter((d) => v[`discount_${d}`]);

const t = translator('customers', {
  de: {
    title: 'Kunden',
    list: 'Alle Kunden',
    id: 'Nr.',
    name: 'Name',
    tariff: 'Tarif',
    discount_mobile: 'Rabatt mit Mobilfunk',
    discount_all_ip: 'Rabatt mit All-IP',
    discounts: 'Rabatte',
    contractEnds: 'Vertragsende (gekündigt)',
    businessOption: 'Business Option',
    businessDefault: 'Business Option (Vorgabe für neue Nebenstellen)',
    businessDefaultHint: 'Geändert wird sie für alle Nebenstellen des Kunden auf einmal.',
    srtpRequired: 'SRTP vorgeschrieben',
    trial: 'Testzugang (30 Tage)',
    contractStart: 'Vertragsbeginn',
    termMonths: 'Laufzeit (Monate)',
    bookedLicences: 'Gebuchte Lizenzen',
    sipDomain: 'SIP-Domain (optional)',
    extensions: 'Nebenstellen',
    numbers: 'Rufnummern',
    create: 'Neuer Kunde',
    created: 'Kunde {{name}} angelegt.',
    open: 'Öffnen',
    overview: 'Kunde: {{name}}',
    contract: 'Vertrag',
    usage: 'Nutzung und Grenzen',
    extensionsUsed: '{{count}} von {{max}} Nebenstellen belegt (5 im Basispaket + gebuchte Lizenzen)',
    numbersUsed: '{{count}} von höchstens {{max}} Kopfnummern',
    price: 'Monatspreis',
    trialEnds: 'Testzugang endet',
    trialExpired: 'Testzugang abgelaufen',
    defaultCallerId: 'Standard-Rufnummernanzeige',
    defaultCallerIdHint: 'Eine Rufnummer, die der Kunde hält; leer für keine.',
    edit: 'Ändern',
  },
  en: {
    title: 'Customers',
    list: 'All customers',
    id: 'No.',
    name: 'Name',
    tariff: 'Tariff',
    discount_mobile: 'Discount with mobile',
    discount_all_ip: 'Discount with All-IP',
    discounts: 'Discounts',
    contractEnds: 'Contract ends (notice given)',
    businessOption: 'Business Option',
    businessDefault: 'Business Option (default for new extensions)',
    businessDefaultHint: 'A change books or cancels it for every extension of the customer at once.',
    srtpRequired: 'SRTP required',
    trial: 'Trial (30 days)',
    contractStart: 'Contract start',
    termMonths: 'Term (months)',
    bookedLicences: 'Booked licences',
    sipDomain: 'SIP domain (optional)',
    extensions: 'Extensions',
    numbers: 'Numbers',
    create: 'New customer',
    created: 'Customer {{name}} created.',
    open: 'Open',
    overview: 'Customer: {{name}}',
    contract: 'Contract',
    usage: 'Usage and limits',
    extensionsUsed: '{{count}} of {{max}} extensions in use (5 in the base package + booked licences)',
    numbersUsed: '{{count}} of at most {{max}} head numbers',
    price: 'Monthly price',
    trialEnds: 'Trial ends',
    trialExpired: 'Trial expired',
    defaultCallerId: 'Default caller ID',
    defaultCallerIdHint: 'A number the customer holds; empty for none.',
    edit: 'Change',
  },
});

const tariffOptions = () => TARIFFS.map((x) => [x, x]);

function NewCustomer({ onCreated }) {
  const today = new Date().toISOString().slice(0, 10);
  const f = useForm({ name: '', tariff: 'basic', contract_start: today, term_months: '24', booked_licences: '0', business_option: false, srtp_required: false, trial: false, sip_domain: '', discount_mobile: false, discount_all_ip: false });
  const [done, setDone] = useState('');
  const submit = f.submit(async (v) => {
    const { discount_mobile, discount_all_ip, ...rest } = v;
    const body = { ...rest, discounts: discountsOf(v), term_months: Number(v.term_months), booked_licences: Number(v.booked_licences), sip_domain: v.sip_domain || null };
    const c = await post('/customers', body);
    setDone(t('created', { name: c.name }));
    onCreated();
  });
  const fields = ['name', 'tariff', 'discounts', 'contract_start', 'term_months', 'booked_licences', 'business_option', 'srtp_required', 'trial', 'sip_domain'];
  return html`<form onSubmit=${submit} class="form" aria-labelledby="new-customer">
    <h2 id="new-customer">${t('create')}</h2>
    <${FormError} error=${f.error} fields=${fields} />
    ${done && html`<${Notice}>${done}<//>`}
    <${Field} label=${t('name')} name="name" required value=${f.values.name} onInput=${f.set('name')} error=${f.error} />
    <${Field} label=${t('tariff')} name="tariff" type="select" options=${tariffOptions()} value=${f.values.tariff} onInput=${f.set('tariff')} error=${f.error} />
    ${DISCOUNTS.map((d) => html`<${Field} label=${t(`discount_${d}`)} name=${`discount_${d}`} type="checkbox" value=${f.values[`discount_${d}`]} onInput=${f.set(`discount_${d}`)} error=${f.error} />`)}
    <${Field} label=${t('contractStart')} name="contract_start" type="date" required value=${f.values.contract_start} onInput=${f.set('contract_start')} error=${f.error} />
    <${Field} label=${t('termMonths')} name="term_months" type="number" min="1" value=${f.values.term_months} onInput=${f.set('term_months')} error=${f.error} />
    <${Field} label=${t('bookedLicences')} name="booked_licences" type="number" min="0" value=${f.values.booked_licences} onInput=${f.set('booked_licences')} error=${f.error} />
    <${Field} label=${t('businessOption')} name="business_option" type="checkbox" value=${f.values.business_option} onInput=${f.set('business_option')} error=${f.error} />
    <${Field} label=${t('srtpRequired')} name="srtp_required" type="checkbox" value=${f.values.srtp_required} onInput=${f.set('srtp_required')} error=${f.error} />
    <${Field} label=${t('trial')} name="trial" type="checkbox" value=${f.values.trial} onInput=${f.set('trial')} error=${f.error} />
    <${Field} label=${t('sipDomain')} name="sip_domain" value=${f.values.sip_domain} onInput=${f.set('sip_domain')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${common('create')}</button>
  </form>`;
}

export function Customers() {
  const list = useLoad(() => get('/customers?limit=500'));
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${list}>${(d) => html`<${Table} caption=${t('list')}
      head=${[t('id'), t('name'), t('tariff'), t('businessOption'), t('extensions'), t('numbers')]}
      rows=${d.items.map((c) => [c.id, html`<${Link} href=${`/customers/${c.id}`}>${c.name}<//>`, c.tariff, yesNo(c.business_option), `${c.extension_count} / ${c.booked_extensions}`, c.head_number_count])} />`}
    <//>
    <${NewCustomer} onCreated=${list.reload} />
  <//>`;
}

function OperatorEdit({ customer, onSaved }) {
  const f = useForm({ name: customer.name, tariff: customer.tariff, business_option: customer.business_option, srtp_required: customer.srtp_required,
    discount_mobile: customer.discounts.includes('mobile'), discount_all_ip: customer.discounts.includes('all_ip') });
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    const { discount_mobile, discount_all_ip, ...rest } = v;
    await patch(`/customers/${customer.id}`, { ...rest, discounts: discountsOf(v) });
    setDone(true);
    onSaved();
  });
  const fields = ['name', 'tariff', 'discounts', 'business_option', 'srtp_required'];
  return html`<form onSubmit=${submit} class="form" aria-labelledby="edit-customer">
    <h2 id="edit-customer">${t('edit')}</h2>
    <${FormError} error=${f.error} fields=${fields} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    <${Field} label=${t('name')} name="name" required value=${f.values.name} onInput=${f.set('name')} error=${f.error} />
    <${Field} label=${t('tariff')} name="tariff" type="select" options=${tariffOptions()} value=${f.values.tariff} onInput=${f.set('tariff')} error=${f.error} />
    ${DISCOUNTS.map((d) => html`<${Field} label=${t(`discount_${d}`)} name=${`discount_${d}`} type="checkbox" value=${f.values[`discount_${d}`]} onInput=${f.set(`discount_${d}`)} error=${f.error} />`)}
    <${Field} label=${t('businessDefault')} name="business_option" type="checkbox" hint=${t('businessDefaultHint')} value=${f.values.business_option} onInput=${f.set('business_option')} error=${f.error} />
    <${Field} label=${t('srtpRequired')} name="srtp_required" type="checkbox" value=${f.values.srtp_required} onInput=${f.set('srtp_required')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${common('save')}</button>
  </form>`;
}

function CallerIdEdit({ customer, onSaved }) {
  const f = useForm({ default_caller_id: customer.default_caller_id ?? '' });
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    await patch(`/customers/${customer.id}`, { default_caller_id: v.default_caller_id || null });
    setDone(true);
    onSaved();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="caller-id">
    <h2 id="caller-id">${t('defaultCallerId')}</h2>
    <${FormError} error=${f.error} fields=${['default_caller_id']} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    <${Field} label=${t('defaultCallerId')} name="default_caller_id" hint=${t('defaultCallerIdHint')} value=${f.values.default_caller_id} onInput=${f.set('default_caller_id')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${common('save')}</button>
  </form>`;
}

export function CustomerOverview({ params }) {
  const { me } = useSession();
  const state = useLoad(() => get(`/customers/${params.cid}`), [params.cid]);
  const title = state.data ? t('overview', { name: state.data.name }) : t('title');
  return html`<${Page} title=${title}>
    <${Loaded} state=${state}>${(c) => html`
      <h2>${t('usage')}</h2>
      <ul class="facts">
        <li><meter min="0" max=${c.booked_extensions} value=${c.extension_count} aria-hidden="true"></meter>
          ${t('extensionsUsed', { count: c.extension_count, max: c.booked_extensions })}</li>
        <li>${t('numbersUsed', { count: c.head_number_count, max: MAX_HEAD_NUMBERS_PER_CUSTOMER })}</li>
      </ul>
      <h2>${t('contract')}</h2>
      <dl class="facts">
        <dt>${t('tariff')}</dt><dd>${c.tariff}</dd>
        <dt>${t('discounts')}</dt><dd>${c.discounts.length ? c.discounts.map((d) => t(`discount_${d}`)).join(', ') : '–'}</dd>
        <dt>${t('contractStart')}</dt><dd>${c.contract_start}</dd>
        <dt>${t('termMonths')}</dt><dd>${c.term_months}</dd>
        <dt>${t('bookedLicences')}</dt><dd>${c.booked_licences}</dd>
        <dt>${t('businessDefault')}</dt><dd>${yesNo(c.business_option)}</dd>
        <dt>${t('srtpRequired')}</dt><dd>${yesNo(c.srtp_required)}</dd>
        <dt>${t('price')}</dt><dd>${c.monthly_price_eur} EUR</dd>
        ${c.contract_ends_on && html`<dt>${t('contractEnds')}</dt><dd>${c.contract_ends_on}</dd>`}
        ${c.trial_ends_at && html`<dt>${t('trialEnds')}</dt><dd>${c.trial_ends_at}${c.trial_expired ? ` (${t('trialExpired')})` : ''}</dd>`}
        <dt>${t('defaultCallerId')}</dt><dd>${c.default_caller_id ?? '–'}</dd>
      </dl>
      ${isOperator(me) && html`<${OperatorEdit} customer=${c} onSaved=${state.reload} />`}
      ${me.role === 'customer_admin' && html`<${CallerIdEdit} customer=${c} onSaved=${state.reload} />`}
    `}<//>
  <//>`;
}
