// Building blocks every view uses: the page frame (its heading takes the focus when a route is
// shown), labelled fields that show the API's error next to the field it names, alerts, data
// loading. Markup with htm over Preact; nothing here knows a particular resource.
import { html } from 'htm/preact';
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import { translator } from './i18n.js';

const t = translator('common', {
  de: {
    loading: 'Wird geladen …',
    error: 'Fehler',
    refused: 'Die Anfrage wurde abgelehnt',
    save: 'Speichern',
    create: 'Anlegen',
    delete: 'Löschen',
    cancel: 'Abbrechen',
    edit: 'Bearbeiten',
    saved: 'Gespeichert.',
    none: 'Keine Einträge.',
    yes: 'ja',
    no: 'nein',
    required: 'Pflichtfeld',
    confirmDelete: '„{{what}}“ wirklich löschen?',
    actions: 'Aktionen',
  },
  en: {
    loading: 'Loading …',
    error: 'Error',
    refused: 'The request was refused',
    save: 'Save',
    create: 'Create',
    delete: 'Delete',
    cancel: 'Cancel',
    edit: 'Edit',
    saved: 'Saved.',
    none: 'No entries.',
    yes: 'yes',
    no: 'no',
    required: 'required',
    confirmDelete: 'Really delete "{{what}}"?',
    actions: 'Actions',
  },
});
export { t as common };

// The first page after the document loads leaves the focus where the browser put it (the
// skip link is the first Tab stop then); every later one takes it.
let firstPage = true;

// A page: its <h1> receives the focus when it mounts (each route change mounts a page), so a
// screen reader announces where the reader now is.
export function Page({ title, children }) {
  const heading = useRef(null);
  useEffect(() => {
    if (!firstPage) heading.current?.focus();
    firstPage = false;
  }, []);
  useEffect(() => {
    document.title = `${title} – PBX`;
  }, [title]);
  return html`<section class="page" aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1" ref=${heading}>${title}</h1>
    ${children}
  </section>`;
}

// The API's refusal as it came: its message and its machine-readable code.
export function ErrorAlert({ error, id }) {
  if (!error) return null;
  return html`<div class="alert" role="alert" id=${id}>
    <strong>${t('refused')}:</strong> ${error.message}
    ${error.code && html` <code class="code">${error.code}</code>`}
  </div>`;
}

export function Notice({ children }) {
  return html`<p class="notice" role="status">${children}</p>`;
}

let fieldSeq = 0;

// A labelled form control. `error`: the form's ApiError; shown here when it names this field.
export function Field({ label, name, error, hint, type = 'text', options, value, onInput, ...rest }) {
  const [id] = useState(() => `f-${name}-${++fieldSeq}`);
  const mine = error && error.field === name ? error : null;
  const described = [hint && `${id}-hint`, mine && `${id}-err`].filter(Boolean).join(' ');
  const common = {
    id,
    name,
    'aria-describedby': described || undefined,
    'aria-invalid': mine ? 'true' : undefined,
    ...rest,
  };
  let control;
  if (type === 'select') {
    control = html`<select ...${common} value=${value} onChange=${(e) => onInput(e.target.value)}>
      ${options.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
    </select>`;
  } else if (type === 'checkbox') {
    control = html`<input type="checkbox" ...${common} checked=${!!value}
      onChange=${(e) => onInput(e.target.checked)} />`;
  } else if (type === 'file') {
    // The chosen File, never a value: a file input's value cannot be set, only cleared.
    control = html`<input type="file" ...${common} onChange=${(e) => onInput(e.target.files[0] ?? null)} />`;
  } else if (type === 'textarea') {
    control = html`<textarea ...${common} value=${value}
      onInput=${(e) => onInput(e.target.value)}></textarea>`;
  } else {
    control = html`<input type=${type} ...${common} value=${value ?? ''}
      onInput=${(e) => onInput(e.target.value)} />`;
  }
  return html`<div class=${`field${type === 'checkbox' ? ' check' : ''}`}>
    <label for=${id}>${label}${rest.required ? html`<span class="req"> (${t('required')})</span>` : ''}</label>
    ${control}
    ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
    ${mine && html`<p class="field-error" id=${`${id}-err`} role="alert">
      ${mine.message} <code class="code">${mine.code}</code></p>`}
  </div>`;
}

// Form state: values, the last ApiError, busy; `submit(fn)` runs fn(values) and keeps its error.
// An error that names no field of the form is shown once above the form (role=alert).
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (v) => setValues((old) => ({ ...old, [name]: v }));
  const submit = (fn) => async (e) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await fn(values);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { values, setValues, set, error, setError, busy, submit };
}

// The error above a form: one the API tied to none of `fields`.
export function FormError({ error, fields }) {
  if (!error || (error.field && fields.includes(error.field))) return null;
  return html`<${ErrorAlert} error=${error} />`;
}

// Data for a view: {data, error, reload}. An API refusal is kept as the error, never as data.
export function useLoad(fn, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const reload = useCallback(() => {
    setState((s) => ({ ...s, loading: true }));
    return fn().then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => setState({ data: null, error, loading: false }),
    );
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { ...state, reload };
}

// Shows the loading state or the refusal; renders `children(data)` once there is data.
export function Loaded({ state, children }) {
  if (state.error) return html`<${ErrorAlert} error=${state.error} />`;
  if (state.data === null) return html`<p aria-busy="true">${t('loading')}</p>`;
  return children(state.data);
}

export function Table({ caption, head, rows, empty }) {
  if (!rows.length) return html`<p>${empty || t('none')}</p>`;
  return html`<div class="table-wrap"><table>
    <caption>${caption}</caption>
    <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

export const yesNo = (v) => (v ? t('yes') : t('no'));

// Asks before a delete: the browser's own dialog (keyboard and screen-reader friendly).
export const confirmDelete = (what) => window.confirm(t('confirmDelete', { what }));
