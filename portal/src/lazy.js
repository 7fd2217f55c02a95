// A view whose module loads on first use (its own chunk): the phone, with JsSIP, weighs more
// than the rest of the portal together.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorAlert, common } from './ui.js';

export function lazy(load) {
  let loaded = null;
  return function Lazy(props) {
    const [View, setView] = useState(() => loaded);
    const [error, setError] = useState(null);
    useEffect(() => {
      if (!View)
        load().then(
          (m) => setView(() => (loaded = m.default)),
          (e) => setError({ message: String(e), code: 'load_failed' }),
        );
    }, []);
    if (error) return html`<${ErrorAlert} error=${error} />`;
    return View ? html`<${View} ...${props} />` : html`<p aria-busy="true">${common('loading')}</p>`;
  };
}
