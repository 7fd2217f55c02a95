// The portal's entry: pick the language, take a set-password link's token out of the address,
// render the shell.
import { html } from 'htm/preact';
import { render } from 'preact';
import './app.css';
import './i18n.js';
import { App } from './shell.js';
import { keepLinkToken } from './views/set-password.js';

// The e-mailed link is /set-password?token=...: keep the token in memory only, and let the
// address (and so the history) show the hash route instead.
if (location.pathname === '/set-password') {
  keepLinkToken(new URLSearchParams(location.search).get('token') || '');
  history.replaceState(null, '', '/#/set-password');
}

render(html`<${App} />`, document.getElementById('app'));
