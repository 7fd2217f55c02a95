// The onboarding link's page (/set-password?token=...). main.js takes the token from the
// address before anything renders and replaces the address with #/set-password, so the token
// is in neither the history nor any later request's Referer.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { post } from '../api.js';
import { translator } from '../i18n.js';
import { Field, FormError, Notice, Page, useForm } from '../ui.js';

let linkToken = '';
export const keepLinkToken = (token) => {
  linkToken = token;
};

const t = translator('setPassword', {
  de: {
    title: 'Passwort festlegen',
    password: 'Neues Passwort',
    hint: '12 bis 128 Zeichen, mindestens 5 verschiedene.',
    submit: 'Passwort festlegen',
    done: 'Das Passwort ist gesetzt. Sie können sich jetzt anmelden.',
    toLogin: 'Zur Anmeldung',
    noToken: 'Dieser Seite fehlt der Link aus der E-Mail. Öffnen Sie den Link erneut.',
  },
  en: {
    title: 'Set your password',
    password: 'New password',
    hint: '12 to 128 characters, at least 5 different ones.',
    submit: 'Set password',
    done: 'Password set. You can log in now.',
    toLogin: 'Go to login',
    noToken: 'This page lacks the link from the e-mail. Open the link again.',
  },
});

export default function SetPassword() {
  const f = useForm({ password: '' });
  const [done, setDone] = useState(false);
  const submit = f.submit(async (v) => {
    await post('/auth/set-password', { token: linkToken, password: v.password });
    linkToken = '';
    setDone(true);
  });
  let body;
  if (done) body = html`<${Notice}>${t('done')}</${Notice}><p><a href="#/">${t('toLogin')}</a></p>`;
  else if (!linkToken) body = html`<p role="alert">${t('noToken')}</p>`;
  else
    body = html`<form onSubmit=${submit} class="form narrow" novalidate>
      <${FormError} error=${f.error} fields=${['password']} />
      <${Field} label=${t('password')} name="password" type="password" required minlength="12"
        autocomplete="new-password" hint=${t('hint')} value=${f.values.password}
        onInput=${f.set('password')} error=${f.error} />
      <button type="submit" disabled=${f.busy}>${t('submit')}</button>
    </form>`;
  return html`<${Page} title=${t('title')}>${body}<//>`;
}
