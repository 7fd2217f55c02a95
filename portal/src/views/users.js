// Users of a customer: invite (the API mails a set-password link), remove, and the extensions
// each user manages (their call rules; their browser phone).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { del, get, post, put } from '../api.js';
import { translator } from '../i18n.js';
import { isAdmin, useSession } from '../session.js';
import { ErrorAlert, Field, FormError, Loaded, Notice, Page, Table, common, confirmDelete, useForm, useLoad, yesNo } from '../ui.js';

const t = translator('users', {
  de: {
    title: 'Benutzer',
    list: 'Benutzer des Kunden',
    email: 'E-Mail-Adresse',
    name: 'Name',
    role: 'Rolle',
    role_user: 'Benutzer',
    role_customer_admin: 'Administrator',
    passwordSet: 'Passwort gesetzt',
    invite: 'Benutzer einladen',
    inviteHint: 'Der Benutzer erhält eine E-Mail mit einem Link, über den er sein Passwort festlegt.',
    invited: 'Einladung an {{email}} verschickt.',
    extensions: 'Nebenstellen',
    manage: 'Nebenstellen zuordnen',
    remove: 'Entfernen',
    removeName: '{{email}} entfernen',
    userTitle: 'Nebenstellen von {{email}}',
    linked: 'Zugeordnete Nebenstellen',
    linkedHint: 'Mehrfachauswahl mit Strg bzw. Umschalt. Der Benutzer verwaltet deren Anrufregeln.',
    back: 'Zurück zu den Benutzern',
  },
  en: {
    title: 'Users',
    list: "The customer's users",
    email: 'E-mail address',
    name: 'Name',
    role: 'Role',
    role_user: 'User',
    role_customer_admin: 'Administrator',
    passwordSet: 'Password set',
    invite: 'Invite a user',
    inviteHint: 'The user receives an e-mail with a link to set their password.',
    invited: 'Invitation sent to {{email}}.',
    extensions: 'Extensions',
    manage: 'Assign extensions',
    remove: 'Remove',
    removeName: 'Remove {{email}}',
    userTitle: 'Extensions of {{email}}',
    linked: 'Assigned extensions',
    linkedHint: 'Select several with Ctrl or Shift. The user manages their call rules.',
    back: 'Back to the users',
  },
});

function Invite({ cid, onDone }) {
  const f = useForm({ email: '', display_name: '', role: 'user' });
  const [done, setDone] = useState('');
  const submit = f.submit(async (v) => {
    setDone('');
    const u = await post(`/customers/${cid}/users`, v);
    setDone(t('invited', { email: u.email }));
    f.setValues({ email: '', display_name: '', role: 'user' });
    onDone();
  });
  return html`<form onSubmit=${submit} class="form" aria-labelledby="invite">
    <h2 id="invite">${t('invite')}</h2>
    <p class="hint">${t('inviteHint')}</p>
    <${FormError} error=${f.error} fields=${['email', 'display_name', 'role']} />
    ${done && html`<${Notice}>${done}<//>`}
    <${Field} label=${t('email')} name="email" type="email" required value=${f.values.email} onInput=${f.set('email')} error=${f.error} />
    <${Field} label=${t('name')} name="display_name" value=${f.values.display_name} onInput=${f.set('display_name')} error=${f.error} />
    <${Field} label=${t('role')} name="role" type="select" options=${[['user', t('role_user')], ['customer_admin', t('role_customer_admin')]]} value=${f.values.role} onInput=${f.set('role')} error=${f.error} />
    <button type="submit" disabled=${f.busy}>${t('invite')}</button>
  </form>`;
}

export function Users({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const list = useLoad(() => get(`/customers/${cid}/users`), [cid]);
  const [error, setError] = useState(null);
  const remove = (u) => {
    if (!confirmDelete(u.email)) return;
    setError(null);
    del(`/customers/${cid}/users/${u.id}`).then(list.reload, setError);
  };
  const admin = isAdmin(me);
  return html`<${Page} title=${t('title')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${list}>${(d) => html`<${Table} caption=${t('list')}
      head=${[t('email'), t('name'), t('role'), t('passwordSet'), common('actions')]}
      rows=${d.items.map((u) => [
        u.email,
        u.display_name,
        t(`role_${u.role}`),
        yesNo(u.password_set),
        html`<${Link} href=${`/customers/${cid}/users/${u.id}`}>${t('manage')}<//>
          ${admin && u.id !== me.user?.id && html` <button type="button" class="secondary" onClick=${() => remove(u)} aria-label=${t('removeName', { email: u.email })}>${t('remove')}</button>`}`,
      ])} />
      ${admin && html`<${Invite} cid=${cid} onDone=${list.reload} />`}`}<//>
  <//>`;
}

export function UserExtensions({ params }) {
  const { cid, uid } = params;
  const state = useLoad(
    () => Promise.all([
      get(`/customers/${cid}/users`),
      get(`/customers/${cid}/users/${uid}/extensions`),
      get(`/customers/${cid}/extensions?limit=1000`),
    ]),
    [cid, uid],
  );
  const f = useForm({ extension_ids: null });
  const [done, setDone] = useState(false);
  return html`<${Page} title=${t('linked')}>
    <p><${Link} href=${`/customers/${cid}/users`}>${t('back')}<//></p>
    <${Loaded} state=${state}>${([users, linked, exts]) => {
      const user = users.items.find((u) => String(u.id) === String(uid));
      const chosen = f.values.extension_ids ?? linked.extension_ids.map(String);
      const submit = f.submit(async () => {
        setDone(false);
        await put(`/customers/${cid}/users/${uid}/extensions`, { extension_ids: chosen.map(Number) });
        setDone(true);
      });
      return html`<form onSubmit=${submit} class="form" aria-labelledby="linked-of">
        <h2 id="linked-of">${t('userTitle', { email: user?.email ?? uid })}</h2>
        <${FormError} error=${f.error} fields=${[]} />
        ${done && html`<${Notice}>${common('saved')}<//>`}
        <div class="field">
          <label for="linked">${t('linked')}</label>
          <select id="linked" multiple size="10" aria-describedby="linked-hint"
            onChange=${(e) => f.set('extension_ids')([...e.target.selectedOptions].map((o) => o.value))}>
            ${exts.items.map((x) => html`<option value=${x.id} selected=${chosen.includes(String(x.id))}>${x.number} ${x.display_name}</option>`)}
          </select>
          <p class="hint" id="linked-hint">${t('linkedHint')}</p>
        </div>
        <button type="submit" disabled=${f.busy}>${common('save')}</button>
      </form>`;
    }}<//>
  <//>`;
}
