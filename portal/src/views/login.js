// Login with e-mail and password (the only way in, R6). The session cookie and the CSRF cookie
// come with the answer; the shell then asks /me who this is.
import { html } from 'htm/preact';
import { post } from '../api.js';
import { translator } from '../i18n.js';
import { Field, FormError, Page, useForm } from '../ui.js';

const t = translator('login', {
  de: {
    title: 'Anmelden',
    email: 'E-Mail-Adresse',
    password: 'Passwort',
    submit: 'Anmelden',
    forgot: 'Kein Passwort? Ihr Administrator schickt Ihnen einen Link per E-Mail.',
  },
  en: {
    title: 'Log in',
    email: 'E-mail address',
    password: 'Password',
    submit: 'Log in',
    forgot: 'No password? Your administrator sends you a link by e-mail.',
  },
});

export default function Login({ onLogin }) {
  const f = useForm({ email: '', password: '' });
  const submit = f.submit(async (v) => {
    await post('/auth/login', v);
    await onLogin();
  });
  return html`<${Page} title=${t('title')}>
    <form onSubmit=${submit} class="form narrow" novalidate>
      <${FormError} error=${f.error} fields=${['email', 'password']} />
      <${Field} label=${t('email')} name="email" type="email" autocomplete="username" required
        value=${f.values.email} onInput=${f.set('email')} error=${f.error} />
      <${Field} label=${t('password')} name="password" type="password" required
        autocomplete="current-password" value=${f.values.password} onInput=${f.set('password')}
        error=${f.error} />
      <button type="submit" disabled=${f.busy}>${t('submit')}</button>
      <p class="hint">${t('forgot')}</p>
    </form>
  <//>`;
}
