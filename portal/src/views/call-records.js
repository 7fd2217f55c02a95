// Call records of a customer: a time window, pages of 100, and the same window as CSV.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { API, get } from '../api.js';
import { translator } from '../i18n.js';
import { Field, Loaded, Page, Table, useLoad } from '../ui.js';

const PAGE = 100;

const t = translator('callRecords', {
  de: {
    title: 'Anrufliste',
    list: 'Anrufe',
    from: 'Von (UTC)',
    until: 'Bis (UTC, ausschließlich)',
    show: 'Anzeigen',
    csv: 'Als CSV herunterladen',
    started: 'Beginn',
    caller: 'Anrufer',
    dialled: 'Gewählt',
    answeredBy: 'Angenommen von',
    duration: 'Dauer (s)',
    cause: 'Ergebnis',
    prev: 'Vorherige Seite',
    next: 'Nächste Seite',
    cause_answered: 'angenommen', cause_busy: 'besetzt', cause_declined: 'abgelehnt', cause_cancelled: 'abgebrochen',
    cause_no_answer: 'keine Antwort', cause_unavailable: 'nicht erreichbar', cause_not_found: 'unbekannt',
    cause_forbidden: 'nicht erlaubt', cause_loop: 'Weiterleitungsschleife', cause_rejected: 'abgewiesen', cause_failed: 'fehlgeschlagen',
  },
  en: {
    title: 'Call records',
    list: 'Calls',
    from: 'From (UTC)',
    until: 'Until (UTC, exclusive)',
    show: 'Show',
    csv: 'Download as CSV',
    started: 'Started',
    caller: 'Caller',
    dialled: 'Dialled',
    answeredBy: 'Answered by',
    duration: 'Duration (s)',
    cause: 'Result',
    prev: 'Previous page',
    next: 'Next page',
    cause_answered: 'answered', cause_busy: 'busy', cause_declined: 'declined', cause_cancelled: 'cancelled',
    cause_no_answer: 'no answer', cause_unavailable: 'unavailable', cause_not_found: 'not found',
    cause_forbidden: 'forbidden', cause_loop: 'forwarding loop', cause_rejected: 'rejected', cause_failed: 'failed',
  },
});

// <input type="datetime-local"> gives "2026-12-01T08:00"; the API takes UTC with a zone.
const utc = (local) => (local ? `${local}:00Z` : '');

function query(window, extra) {
  const q = new URLSearchParams(extra);
  if (window.from) q.set('from', utc(window.from));
  if (window.until) q.set('until', utc(window.until));
  return q.toString();
}

export function CallRecords({ params }) {
  const { cid } = params;
  const [form, setForm] = useState({ from: '', until: '' });
  const [window, setWindow] = useState({ from: '', until: '' });
  const [offset, setOffset] = useState(0);
  const path = `/customers/${cid}/call-records`;
  const state = useLoad(() => get(`${path}?${query(window, { limit: PAGE, offset })}`), [path, window, offset]);
  const show = (e) => {
    e.preventDefault();
    setOffset(0);
    setWindow(form);
  };
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${state}>${(d) => html`
      <form onSubmit=${show} class="form">
        <${Field} label=${t('from')} name="from" type="datetime-local" value=${form.from} onInput=${(v) => setForm({ ...form, from: v })} />
        <${Field} label=${t('until')} name="until" type="datetime-local" value=${form.until} onInput=${(v) => setForm({ ...form, until: v })} />
        <button type="submit">${t('show')}</button>
      </form>
      <p><a href=${`${API}${path}?${query(window, { format: 'csv' })}`} download="call-records.csv">${t('csv')}</a></p>
      <${Table} caption=${t('list')} head=${[t('started'), t('caller'), t('dialled'), t('answeredBy'), t('duration'), t('cause')]}
        rows=${d.items.map((r) => [r.started_at.replace('T', ' ').slice(0, 19), r.caller_id || r.caller, r.dialled, r.answered_by || '–', Math.round(r.duration), t(`cause_${r.cause}`, { defaultValue: r.cause })])} />
      <div class="pager">
        <button type="button" class="secondary" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>${t('prev')}</button>
        <button type="button" class="secondary" disabled=${d.next_offset === null} onClick=${() => setOffset(d.next_offset)}>${t('next')}</button>
      </div>`}<//>
  <//>`;
}
