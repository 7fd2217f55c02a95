// Ring groups of a customer: members ring together, one after the other, or in turn; the final
// target takes the call when nobody answers.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, patch, post } from '../api.js';
import { translator } from '../i18n.js';
import { isAdmin, useSession } from '../session.js';
import { ErrorAlert, Field, FormError, Loaded, Notice, Page, Table, common, confirmDelete, useForm, useLoad } from '../ui.js';
import { TargetInput, describeTarget } from './targets.js';

const STRATEGIES = ['parallel', 'hunt', 'roundrobin'];

const t = translator('ringGroups', {
  de: {
    title: 'Gruppen',
    list: 'Gruppen des Kunden',
    name: 'Name',
    strategy: 'Klingelreihenfolge',
    strategy_parallel: 'Alle gleichzeitig',
    strategy_hunt: 'Nacheinander',
    strategy_roundrobin: 'Reihum',
    memberTimeout: 'Sekunden je Mitglied',
    members: 'Mitglieder',
    membersHint: 'Nebenstellennummern, durch Komma getrennt.',
    final: 'Wenn niemand antwortet',
    create: 'Neue Gruppe',
    edit: 'Gruppe {{name}} bearbeiten',
    editButton: 'Bearbeiten',
    editName: '{{name}} bearbeiten',
    deleteName: '{{name}} löschen',
  },
  en: {
    title: 'Ring groups',
    list: "The customer's ring groups",
    name: 'Name',
    strategy: 'Ringing order',
    strategy_parallel: 'All at once',
    strategy_hunt: 'One after the other',
    strategy_roundrobin: 'In turn',
    memberTimeout: 'Seconds per member',
    members: 'Members',
    membersHint: 'Extension numbers, separated by commas.',
    final: 'When nobody answers',
    create: 'New ring group',
    edit: 'Edit ring group {{name}}',
    editButton: 'Edit',
    editName: 'Edit {{name}}',
    deleteName: 'Delete {{name}}',
  },
});

const empty = { name: '', strategy: 'parallel', member_timeout: '20', members: '', final: { reject: 480 } };

function GroupForm({ cid, group, groups, onDone }) {
  const initial = group ? { ...group, member_timeout: String(group.member_timeout), members: group.members.join(', ') } : empty;
  const f = useForm(initial);
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    setDone(false);
    const body = { name: v.name, strategy: v.strategy, member_timeout: Number(v.member_timeout), members: v.members.split(',').map((m) => m.trim()).filter(Boolean), final: v.final };
    if (group) await patch(`/customers/${cid}/ring-groups/${group.id}`, body);
    else {
      await post(`/customers/${cid}/ring-groups`, body);
      f.setValues(empty);
    }
    setDone(true);
    onDone();
  });
  const heading = group ? t('edit', { name: group.name }) : t('create');
  const hid = group ? `edit-group-${group.id}` : 'new-group';
  return html`<form onSubmit=${submit} class="form" aria-labelledby=${hid}>
    <h2 id=${hid}>${heading}</h2>
    <${FormError} error=${f.error} fields=${['name', 'strategy', 'member_timeout', 'members']} />
    ${done && html`<${Notice}>${common('saved')}<//>`}
    <${Field} label=${t('name')} name="name" required value=${f.values.name} onInput=${f.set('name')} error=${f.error} />
    <${Field} label=${t('strategy')} name="strategy" type="select" options=${STRATEGIES.map((s) => [s, t(`strategy_${s}`)])} value=${f.values.strategy} onInput=${f.set('strategy')} error=${f.error} />
    <${Field} label=${t('memberTimeout')} name="member_timeout" type="number" min="5" max="120" value=${f.values.member_timeout} onInput=${f.set('member_timeout')} error=${f.error} />
    <${Field} label=${t('members')} name="members" hint=${t('membersHint')} value=${f.values.members} onInput=${f.set('members')} error=${f.error} />
    <${TargetInput} id=${`${hid}-final`} legend=${t('final')} target=${f.values.final} groups=${groups.filter((g) => g.id !== group?.id)} onChange=${f.set('final')} />
    <button type="submit" disabled=${f.busy}>${common('save')}</button>
  </form>`;
}

export function RingGroups({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const list = useLoad(() => get(`/customers/${cid}/ring-groups?limit=1000`), [cid]);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState(null);
  const remove = (g) => {
    if (!confirmDelete(g.name)) return;
    setError(null);
    del(`/customers/${cid}/ring-groups/${g.id}`).then(list.reload, setError);
  };
  const admin = isAdmin(me);
  return html`<${Page} title=${t('title')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${list}>${(d) => html`
      <${Table} caption=${t('list')} head=${[t('name'), t('strategy'), t('members'), t('final'), common('actions')]}
        rows=${d.items.map((g) => [g.name, t(`strategy_${g.strategy}`), g.members.join(', '), describeTarget(g.final, d.items), admin && html`
          <button type="button" class="secondary" onClick=${() => setEditing(g)} aria-label=${t('editName', { name: g.name })}>${t('editButton')}</button>
          <button type="button" class="secondary" onClick=${() => remove(g)} aria-label=${t('deleteName', { name: g.name })}>${common('delete')}</button>`])} />
      ${admin && editing && html`<${GroupForm} key=${editing.id} cid=${cid} group=${editing} groups=${d.items} onDone=${list.reload} />`}
      ${admin && html`<${GroupForm} cid=${cid} groups=${d.items} onDone=${list.reload} />`}
    `}<//>
  <//>`;
}
