// The frame around every page: skip link, header with the navigation for the reader's role,
// the language switch, logout; the routes in <main>. Until someone is logged in, the login.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { Router, Switch, Route, Link, useLocation, useRoute } from 'wouter-preact';
import { useHashLocation } from 'wouter-preact/use-hash-location';
import { get, post, onUnauthenticated } from './api.js';
import { LANGUAGES, language, onLanguageChanged, setLanguage, translator } from './i18n.js';
import { SessionContext, ownCustomer } from './session.js';
import { routes, navFor } from './routes.js';
import Login from './views/login.js';
import SetPassword from './views/set-password.js';
import NotFound from './views/not-found.js';

const t = translator('shell', {
  de: {
    skip: 'Zum Inhalt springen',
    brand: 'PBX Portal',
    nav: 'Hauptnavigation',
    language: 'Sprache',
    logout: 'Abmelden',
    loggedInAs: 'Angemeldet als {{email}} ({{role}})',
    role_operator: 'Betreiber',
    role_customer_admin: 'Kunden-Administrator',
    role_user: 'Benutzer',
    loading: 'Wird geladen …',
    customer: 'Kunde {{id}}',
  },
  en: {
    skip: 'Skip to content',
    brand: 'PBX Portal',
    nav: 'Main navigation',
    language: 'Language',
    logout: 'Log out',
    loggedInAs: 'Logged in as {{email}} ({{role}})',
    role_operator: 'operator',
    role_customer_admin: 'customer admin',
    role_user: 'user',
    loading: 'Loading …',
    customer: 'Customer {{id}}',
  },
});
const LANGUAGE_NAMES = { de: 'Deutsch', en: 'English' };

function LanguageSwitch() {
  return html`<div class="lang">
    <label for="lang-select">${t('language')}</label>
    <select id="lang-select" onChange=${(e) => setLanguage(e.target.value)}>
      ${LANGUAGES.map(
        (l) => html`<option value=${l} lang=${l} selected=${l === language()}>${LANGUAGE_NAMES[l]}</option>`,
      )}
    </select>
  </div>`;
}

// The customer whose pages the navigation lists: an operator's drill-down (from the route), or
// the reader's own.
function useCustomerInView(me) {
  const [match, params] = useRoute('/customers/:cid/*?');
  if (me.role !== 'operator') return ownCustomer(me);
  return match && /^\d+$/.test(params.cid) ? Number(params.cid) : null;
}

function Nav({ me }) {
  const [location] = useLocation();
  const cid = useCustomerInView(me);
  const items = navFor(me, cid);
  return html`<nav aria-label=${t('nav')}>
    <ul>
      ${items.map(
        ({ href, label, sub }) => html`<li class=${sub ? 'sub' : ''}>
          <${Link} href=${href} aria-current=${location === href ? 'page' : undefined}>
            ${label()}
          <//>
        </li>`,
      )}
    </ul>
  </nav>`;
}

function Header({ me, onLogout }) {
  return html`<header class="top">
    <a class="brand" href="#/">${t('brand')}</a>
    ${me && html`<span class="who">${t('loggedInAs', { email: me.user?.email ?? '', role: t(`role_${me.role}`) })}</span>`}
    <${LanguageSwitch} />
    ${me && html`<button type="button" onClick=${onLogout}>${t('logout')}</button>`}
  </header>`;
}

function skipToMain(e) {
  // Not a hash navigation: the hash is the router's.
  e.preventDefault();
  document.getElementById('main')?.focus();
}

function Routes({ me, refresh }) {
  const [location] = useLocation();
  if (location === '/set-password') return html`<${SetPassword} />`;
  if (!me) return html`<${Login} onLogin=${refresh} />`;
  // key: a new route (or the same view for another id) mounts anew, so its heading takes focus.
  return html`<${Switch} key=${location}>
    ${routes
      .filter((r) => r.roles.includes(me.role))
      .map((r) => html`<${Route} path=${r.path} component=${r.view} />`)}
    <${Route} component=${NotFound} />
  <//>`;
}

export function App() {
  const [me, setMe] = useState(undefined); // undefined: not known yet; null: nobody
  const [, setLang] = useState(language());
  const refresh = () => get('/me').then(setMe, () => setMe(null));
  useEffect(() => {
    document.documentElement.lang = language();
    onLanguageChanged((lng) => {
      document.documentElement.lang = lng;
      setLang(lng);
    });
    onUnauthenticated(() => setMe(null));
    refresh();
  }, []);
  const logout = async () => {
    await post('/auth/logout').catch(() => null);
    setMe(null);
    window.location.hash = '#/';
  };
  return html`<${Router} hook=${useHashLocation}>
    <${SessionContext.Provider} value=${{ me, refresh }}>
      <a class="skip" href="#main" onClick=${skipToMain}>${t('skip')}</a>
      <${Header} me=${me} onLogout=${logout} />
      <div class="layout">
        ${me && html`<${Nav} me=${me} />`}
        <main id="main" tabindex="-1">
          ${me === undefined ? html`<p aria-busy="true">${t('loading')}</p>` : html`<${Routes} me=${me} refresh=${refresh} />`}
        </main>
      </div>
    <//>
  <//>`;
}
