import { html } from 'htm/preact';
import { Page } from '../ui.js';
import { translator } from '../i18n.js';

const t = translator('notFound', {
  de: { title: 'Seite nicht gefunden', back: 'Zur Startseite' },
  en: { title: 'Page not found', back: 'Go to the start page' },
});

export default function NotFound() {
  return html`<${Page} title=${t('title')}><p><a href="#/">${t('back')}</a></p><//>`;
}
