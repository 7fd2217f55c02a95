// The #/phone route's placeholder until the browser phone (portal/src/phone/) lands: routes.js
// then imports that module instead of this one.
import { html } from 'htm/preact';
import { Page } from '../ui.js';
import { translator } from '../i18n.js';

const t = translator('phoneSlot', {
  de: { title: 'Telefon', soon: 'Das Browser-Telefon ist hier noch nicht verfügbar.' },
  en: { title: 'Phone', soon: 'The browser phone is not available here yet.' },
});

export default function PhoneSlot() {
  return html`<${Page} title=${t('title')}><p>${t('soon')}</p><//>`;
}
