// The call rules of one extension: an ordered list the API replaces whole and checks at once
// (a loop or an unreadable rule is refused with the rule it names).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { get, put } from '../api.js';
import { translator } from '../i18n.js';
import { ErrorAlert, Loaded, Notice, Page, common, useLoad } from '../ui.js';
import { TargetInput, describeTarget } from './targets.js';

const KINDS = ['caller', 'schedule', 'unconditional', 'busy', 'noanswer', 'unavailable'];

const t = translator('callRules', {
  de: {
    title: 'Anrufregeln',
    titleOf: 'Anrufregeln von {{number}}',
    intro: 'Regeln für Anrufer gelten in ihrer Reihenfolge, die erste passende gewinnt; jede andere Art gilt höchstens einmal.',
    rule: 'Regel {{n}}',
    kind: 'Wann',
    kind_caller: 'Anrufer ist …',
    kind_schedule: 'Außerhalb der Öffnungszeiten',
    kind_unconditional: 'Immer',
    kind_busy: 'Bei besetzt',
    kind_noanswer: 'Keine Antwort nach …',
    kind_unavailable: 'Nicht erreichbar',
    match: 'Rufnummer des Anrufers',
    matchHint: '+49…, 0…, 00… oder eine Nebenstelle; * am Ende für ein Präfix.',
    timeout: 'Sekunden bis zur Weiterleitung',
    add: 'Regel hinzufügen',
    remove: 'Regel {{n}} entfernen',
    up: 'Regel {{n}} nach oben',
    down: 'Regel {{n}} nach unten',
    none: 'Keine Regeln: Anrufe klingeln nur an der Nebenstelle.',
    back: 'Zur Nebenstelle',
    current: 'Gespeicherte Regeln',
  },
  en: {
    title: 'Call rules',
    titleOf: 'Call rules of {{number}}',
    intro: 'Caller rules apply in their order, the first match wins; each other kind applies at most once.',
    rule: 'Rule {{n}}',
    kind: 'When',
    kind_caller: 'The caller is …',
    kind_schedule: 'Outside opening hours',
    kind_unconditional: 'Always',
    kind_busy: 'When busy',
    kind_noanswer: 'No answer after …',
    kind_unavailable: 'When unavailable',
    match: "Caller's number",
    matchHint: '+49…, 0…, 00… or an extension; a trailing * for a prefix.',
    timeout: 'Seconds until forwarding',
    add: 'Add a rule',
    remove: 'Remove rule {{n}}',
    up: 'Move rule {{n}} up',
    down: 'Move rule {{n}} down',
    none: 'No rules: calls ring at the extension only.',
    back: 'To the extension',
    current: 'Saved rules',
  },
});

// The API's answer holds every member (match, timeout null where they do not apply); a write
// takes each kind's own members only.
function forApi(rule) {
  const out = { kind: rule.kind, target: rule.target };
  if (rule.kind === 'caller') out.match = rule.match ?? '';
  if (rule.kind === 'noanswer') out.timeout = Number(rule.timeout ?? 20);
  return out;
}

function RuleEditor({ n, rule, groups, count, onChange, onRemove, onMove }) {
  const id = `rule-${n}`;
  return html`<fieldset class="rule">
    <legend>${t('rule', { n })}</legend>
    <div class="field"><label for=${`${id}-kind`}>${t('kind')}</label>
      <select id=${`${id}-kind`} onChange=${(e) => onChange({ ...rule, kind: e.target.value })}>
        ${KINDS.map((k) => html`<option value=${k} selected=${k === rule.kind}>${t(`kind_${k}`)}</option>`)}
      </select></div>
    ${rule.kind === 'caller' && html`<div class="field"><label for=${`${id}-match`}>${t('match')}</label>
      <input id=${`${id}-match`} value=${rule.match ?? ''} aria-describedby=${`${id}-match-hint`} onInput=${(e) => onChange({ ...rule, match: e.target.value })} />
      <p class="hint" id=${`${id}-match-hint`}>${t('matchHint')}</p></div>`}
    ${rule.kind === 'noanswer' && html`<div class="field"><label for=${`${id}-timeout`}>${t('timeout')}</label>
      <input id=${`${id}-timeout`} type="number" min="5" max="120" value=${rule.timeout ?? 20} onInput=${(e) => onChange({ ...rule, timeout: e.target.value })} /></div>`}
    <${TargetInput} id=${`${id}-target`} target=${rule.target} groups=${groups} onChange=${(target) => onChange({ ...rule, target })} />
    <div class="row">
      <button type="button" class="secondary" disabled=${n === 1} onClick=${() => onMove(-1)}>${t('up', { n })}</button>
      <button type="button" class="secondary" disabled=${n === count} onClick=${() => onMove(1)}>${t('down', { n })}</button>
      <button type="button" class="secondary" onClick=${onRemove}>${t('remove', { n })}</button>
    </div>
  </fieldset>`;
}

export function CallRules({ params }) {
  const { cid, eid } = params;
  const base = `/customers/${cid}/extensions/${eid}`;
  const state = useLoad(() => Promise.all([get(base), get(`${base}/call-rules`), get(`/customers/${cid}/ring-groups?limit=1000`)]), [base]);
  const [rules, setRules] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const ext = state.data?.[0];
  return html`<${Page} title=${ext ? t('titleOf', { number: ext.number }) : t('title')}>
    <p><${Link} href=${base}>${t('back')}<//></p>
    <${Loaded} state=${state}>${([, saved_, groups]) => {
      const list = rules ?? saved_.rules;
      const update = (next) => {
        setSaved(false);
        setRules(next);
      };
      const save = async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        setSaved(false);
        try {
          const r = await put(`${base}/call-rules`, { rules: list.map(forApi) });
          setRules(r.rules);
          setSaved(true);
          state.reload();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      };
      const move = (i, d) => {
        const next = [...list];
        [next[i], next[i + d]] = [next[i + d], next[i]];
        update(next);
      };
      return html`
        <p>${t('intro')}</p>
        <h2>${t('current')}</h2>
        ${saved_.rules.length
          ? html`<ol>${saved_.rules.map((r) => html`<li>${t(`kind_${r.kind}`)}${r.kind === 'caller' ? ` ${r.match}` : ''}${r.kind === 'noanswer' ? ` ${r.timeout} s` : ''} → ${describeTarget(r.target, groups.items)}</li>`)}</ol>`
          : html`<p>${t('none')}</p>`}
        <form onSubmit=${save} class="form">
          <${ErrorAlert} error=${error} />
          ${saved && html`<${Notice}>${common('saved')}<//>`}
          ${list.map((r, i) => html`<${RuleEditor} n=${i + 1} count=${list.length} rule=${r} groups=${groups.items}
            onChange=${(x) => update(list.map((y, j) => (j === i ? x : y)))}
            onRemove=${() => update(list.filter((_, j) => j !== i))}
            onMove=${(d) => move(i, d)} />`)}
          <button type="button" class="secondary" onClick=${() => update([...list, { kind: 'unconditional', match: null, timeout: null, target: { extension: '' } }])}>${t('add')}</button>
          <button type="submit" disabled=${busy}>${common('save')}</button>
        </form>`;
    }}<//>
  <//>`;
}
