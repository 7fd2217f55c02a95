// Where a forwarded call goes, as the API writes it: {extension}, {group}, {external} or
// {reject}: one control for the kind, one for the value, both labelled.
import { html } from 'htm/preact';
import { translator } from '../i18n.js';

export const REJECT_CODES = [403, 404, 480, 486, 600, 603];

export const t = translator('targets', {
  de: {
    target: 'Ziel',
    kind: 'Art des Ziels',
    extension: 'Nebenstelle',
    group: 'Gruppe',
    external: 'Externe Rufnummer',
    reject: 'Abweisen',
    value: 'Wert',
    reject_403: '403 Verboten',
    reject_404: '404 Unbekannt',
    reject_480: '480 Nicht erreichbar',
    reject_486: '486 Besetzt',
    reject_600: '600 Überall besetzt',
    reject_603: '603 Abgelehnt',
  },
  en: {
    target: 'Target',
    kind: 'Kind of target',
    extension: 'Extension',
    group: 'Ring group',
    external: 'External number',
    reject: 'Reject',
    value: 'Value',
    reject_403: '403 Forbidden',
    reject_404: '404 Not found',
    reject_480: '480 Unavailable',
    reject_486: '486 Busy',
    reject_600: '600 Busy everywhere',
    reject_603: '603 Declined',
  },
});

export const targetKind = (target) => Object.keys(target ?? { extension: '' })[0];

export function describeTarget(target, groups = []) {
  const kind = targetKind(target);
  const value = target[kind];
  if (kind === 'group') return `${t('group')}: ${groups.find((g) => g.id === value)?.name ?? value}`;
  if (kind === 'reject') return `${t('reject')}: ${t(`reject_${value}`)}`;
  return `${t(kind)}: ${value}`;
}

// `id`: a prefix unique on the page; `groups`: the customer's ring groups for the group choice.
export function TargetInput({ id, target, onChange, groups, legend }) {
  const kind = targetKind(target);
  const value = target?.[kind] ?? '';
  const setKind = (k) => onChange({ [k]: k === 'reject' ? 486 : k === 'group' ? groups[0]?.id ?? 0 : '' });
  let control;
  if (kind === 'reject')
    control = html`<select id=${`${id}-value`} onChange=${(e) => onChange({ reject: Number(e.target.value) })}>
      ${REJECT_CODES.map((c) => html`<option value=${c} selected=${c === value}>${t(`reject_${c}`)}</option>`)}</select>`;
  else if (kind === 'group')
    control = html`<select id=${`${id}-value`} onChange=${(e) => onChange({ group: Number(e.target.value) })}>
      ${groups.map((g) => html`<option value=${g.id} selected=${g.id === value}>${g.name}</option>`)}</select>`;
  else
    control = html`<input id=${`${id}-value`} value=${value} inputmode="tel" onInput=${(e) => onChange({ [kind]: e.target.value })} />`;
  return html`<fieldset class="target">
    <legend>${legend ?? t('target')}</legend>
    <div class="field"><label for=${`${id}-kind`}>${t('kind')}</label>
      <select id=${`${id}-kind`} onChange=${(e) => setKind(e.target.value)}>
        ${['extension', 'group', 'external', 'reject'].map((k) => html`<option value=${k} selected=${k === kind} disabled=${k === 'group' && !groups.length}>${t(k)}</option>`)}
      </select></div>
    <div class="field"><label for=${`${id}-value`}>${t(kind)}</label>${control}</div>
  </fieldset>`;
}
