// Invoices: the customer's monthly invoices, each with its lines and a PDF to download.
import { html } from 'htm/preact';
import { get } from '../api.js';
import { translator } from '../i18n.js';
import { Loaded, Page, Table, useLoad } from '../ui.js';

const t = translator('invoices', {
  de: {
    title: 'Rechnungen',
    list: 'Monatsrechnungen',
    number: 'Nummer',
    period: 'Monat',
    net: 'Netto',
    vat: 'USt.',
    gross: 'Brutto',
    pdf: 'PDF',
    none: 'Noch keine Rechnungen.',
    lines: 'Positionen der Rechnung {{number}}',
    text: 'Position',
    quantity: 'Menge',
    amount: 'Betrag (netto)',
  },
  en: {
    title: 'Invoices',
    list: 'Monthly invoices',
    number: 'Number',
    period: 'Month',
    net: 'Net',
    vat: 'VAT',
    gross: 'Gross',
    pdf: 'PDF',
    none: 'No invoices yet.',
    lines: 'Lines of invoice {{number}}',
    text: 'Item',
    quantity: 'Quantity',
    amount: 'Amount (net)',
  },
});

const eur = (cents) => `${(cents / 100).toFixed(2)} EUR`;

export function Invoices({ params }) {
  const { cid } = params;
  const state = useLoad(() => get(`/customers/${cid}/invoices`), [cid]);
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${state}>${(d) => html`
      <${Table} caption=${t('list')} empty=${t('none')}
        head=${[t('number'), t('period'), t('net'), t('vat'), t('gross'), t('pdf')]}
        rows=${d.items.map((i) => [i.number, i.period, eur(i.net_cents), eur(i.vat_cents), eur(i.gross_cents),
          html`<a href=${`/api/v1/customers/${cid}/invoices/${i.number}?format=pdf`} download>${t('pdf')}</a>`])} />
      ${d.items.slice(0, 1).map((i) => html`<${Table} caption=${t('lines', { number: i.number })}
        head=${[t('text'), t('quantity'), t('amount')]}
        rows=${i.lines.map((l) => [l.text, l.quantity, eur(l.amount_cents)])} />`)}`}
    <//>
  <//>`;
}
