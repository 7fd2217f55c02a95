// i18next for de/en. Each view module brings its own messages (a namespace per module), so the
// parts of the portal never edit one shared catalogue. German for German browsers, else English;
// the reader's choice is remembered (localStorage).
import i18next from 'i18next';
import LanguageDetector from 'i18next-browser-languagedetector';

export const LANGUAGES = ['de', 'en'];

// Initialised when this module loads (synchronously: the resources are in the bundle), so that
// view modules can add their messages as they load.
i18next.use(LanguageDetector).init({
  supportedLngs: LANGUAGES,
  nonExplicitSupportedLngs: true,
  load: 'languageOnly',
  fallbackLng: 'en',
  initAsync: false,
  ns: [],
  resources: {},
  interpolation: { escapeValue: false }, // Preact escapes what it renders
  detection: {
    order: ['localStorage', 'navigator'],
    lookupLocalStorage: 'pbx.lang',
    caches: ['localStorage'],
  },
});

// The translation function of one module's namespace: `messages` is {de: {...}, en: {...}}.
export function translator(ns, messages) {
  for (const lng of Object.keys(messages)) {
    if (!i18next.hasResourceBundle(lng, ns)) i18next.addResourceBundle(lng, ns, messages[lng]);
  }
  return i18next.getFixedT(null, ns);
}

// The language in use, one of LANGUAGES (i18next's resolvedLanguage waits for resources that
// the views add only as they load).
export const language = () => i18next.languages?.find((l) => LANGUAGES.includes(l)) ?? 'en';
export const setLanguage = (lng) => i18next.changeLanguage(lng);
export const onLanguageChanged = (fn) => i18next.on('languageChanged', fn);
