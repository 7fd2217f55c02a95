// API tokens of the logged-in person: for scripts and integrations (bearer auth). A new token
// is shown once; the API keeps only its hash.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, post } from '../api.js';
import { translator } from '../i18n.js';
import { ErrorAlert, Field, FormError, Loaded, Page, Table, common, confirmDelete, useForm, useLoad } from '../ui.js';

const t = translator('tokens', {
  de: {
    title: 'API-Tokens',
    list: 'Ihre Tokens',
    name: 'Name',
    days: 'Gültig (Tage)',
    create: 'Neues Token',
    once: 'Das neue Token – es wird nur jetzt angezeigt:',
    revoke: 'Widerrufen',
    revokeName: '{{name}} widerrufen',
  },
  en: {
    title: 'API tokens',
    list: 'Your tokens',
    name: 'Name',
    days: 'Valid (days)',
    create: 'New token',
    once: 'The new token – shown only now:',
    revoke: 'Revoke',
    revokeName: 'Revoke {{name}}',
  },
});

export default function Tokens() {
  const list = useLoad(() => get('/tokens'));
  const f = useForm({ name: '', expires_in_days: '365' });
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const submit = f.submit(async (v) => {
    setCreated(await post('/tokens', { name: v.name, expires_in_days: Number(v.expires_in_days) }));
    f.setValues({ name: '', expires_in_days: '365' });
    list.reload();
  });
  const revoke = async (tok) => {
    if (!confirmDelete(tok.name)) return;
    setError(null);
    await del(`/tokens/${tok.id}`).then(list.reload, setError);
  };
  return html`<${Page} title=${t('title')}>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${list}>${(d) => html`<${Table} caption=${t('list')} head=${[t('name'), common('actions')]}
      rows=${d.items.map((x) => [x.name, html`<button type="button" onClick=${() => revoke(x)} aria-label=${t('revokeName', { name: x.name })}>${t('revoke')}</button>`])} />`}<//>
    <form onSubmit=${submit} class="form" aria-labelledby="new-token">
      <h2 id="new-token">${t('create')}</h2>
      <${FormError} error=${f.error} fields=${['name', 'expires_in_days']} />
      <${Field} label=${t('name')} name="name" required value=${f.values.name} onInput=${f.set('name')} error=${f.error} />
      <${Field} label=${t('days')} name="expires_in_days" type="number" min="1" max="730" value=${f.values.expires_in_days} onInput=${f.set('expires_in_days')} error=${f.error} />
      <button type="submit" disabled=${f.busy}>${common('create')}</button>
      ${created && html`<div class="secret" role="status"><p>${t('once')}</p><code>${created.token}</code></div>`}
    </form>
  <//>`;
}
