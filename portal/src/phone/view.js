// The #/phone page: the browser phone of the logged-in user's extension. Credentials come from
// POST /api/v1/me/browser-phone (nobody types a SIP password); the SIP side is ./sip.js. Every
// control is a labelled button or field; the registration and the call state are live regions,
// so a screen reader announces a ringing call and each change of the call.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { translator } from '../i18n.js';
import { useSession } from '../session.js';
import { ErrorAlert, Page } from '../ui.js';
import { BrowserPhone, DTMF_KEYS, normaliseTarget } from './sip.js';

const t = translator('phone', {
  de: {
    title: 'Telefon',
    extension: 'Nebenstelle',
    noExtension: 'Ihrem Benutzer ist keine Nebenstelle zugeordnet.',
    reg_idle: 'Nicht angemeldet.',
    reg_connecting: 'Verbinde mit dem Telefonsystem …',
    reg_registered: 'Bereit: Nebenstelle {{ext}} ist angemeldet.',
    reg_failed: 'Anmeldung abgelehnt: {{status}} {{reason}}',
    reg_stopped: 'Abgemeldet.',
    number: 'Nummer oder Nebenstelle',
    numberHint: 'Eine Nebenstelle (z. B. 181) oder eine externe Rufnummer (z. B. 069 1234567).',
    badNumber: 'Bitte nur Ziffern, +, * und # eingeben.',
    call: 'Anrufen',
    call_ringing: 'Eingehender Anruf von {{peer}}',
    call_calling: 'Rufe {{peer}} an …',
    call_early: 'Es klingelt bei {{peer}} …',
    call_connected: 'Verbunden mit {{peer}}',
    call_held: 'Gehalten: {{peer}}',
    call_ended: 'Anruf mit {{peer}} beendet.',
    callRefused: 'Anruf abgelehnt: {{status}} {{reason}}',
    noCall: 'Kein Anruf.',
    answer: 'Annehmen',
    decline: 'Ablehnen',
    hangup: 'Auflegen',
    hold: 'Halten',
    resume: 'Fortsetzen',
    mute: 'Stummschalten',
    unmute: 'Stummschaltung aufheben',
    muted: 'Mikrofon stumm',
    keypad: 'Wähltastatur (Tonwahl)',
    key: 'Taste {{key}}',
    transferTo: 'Weiterleiten an',
    transfer: 'Weiterleiten',
    transfer_requested: 'Weiterleitung angefragt …',
    transfer_failed: 'Weiterleitung fehlgeschlagen.',
    transfer_done: 'Weitergeleitet.',
    remoteAudio: 'Ton des Gesprächspartners',
  },
  en: {
    title: 'Phone',
    extension: 'Extension',
    noExtension: 'No extension is linked to your user.',
    reg_idle: 'Not registered.',
    reg_connecting: 'Connecting to the phone system …',
    reg_registered: 'Ready: extension {{ext}} is registered.',
    reg_failed: 'Registration refused: {{status}} {{reason}}',
    reg_stopped: 'Unregistered.',
    number: 'Number or extension',
    numberHint: 'An extension (e.g. 181) or an outside number (e.g. 069 1234567).',
    badNumber: 'Please enter digits, +, * and # only.',
    call: 'Call',
    call_ringing: 'Incoming call from {{peer}}',
    call_calling: 'Calling {{peer}} …',
    call_early: 'Ringing at {{peer}} …',
    call_connected: 'Connected with {{peer}}',
    call_held: 'On hold: {{peer}}',
    call_ended: 'Call with {{peer}} ended.',
    callRefused: 'Call refused: {{status}} {{reason}}',
    noCall: 'No call.',
    answer: 'Answer',
    decline: 'Decline',
    hangup: 'Hang up',
    hold: 'Hold',
    resume: 'Resume',
    mute: 'Mute',
    unmute: 'Unmute',
    muted: 'Microphone muted',
    keypad: 'Dial pad (touch tones)',
    key: 'Key {{key}}',
    transferTo: 'Transfer to',
    transfer: 'Transfer',
    transfer_requested: 'Transfer requested …',
    transfer_failed: 'Transfer failed.',
    transfer_done: 'Transferred.',
    remoteAudio: 'The other party’s audio',
  },
});

// The user's extensions, labelled with their numbers (the choice when there are several).
function useExtensions(me) {
  const [items, setItems] = useState(null);
  useEffect(() => {
    const cid = me?.user?.customer_id;
    const ids = me?.extension_ids ?? [];
    Promise.all(
      ids.map((id) =>
        get(`/customers/${cid}/extensions/${id}`).then(
          (x) => ({ id, label: x.display_name ? `${x.number} – ${x.display_name}` : x.number }),
          () => ({ id, label: String(id) }),
        ),
      ),
    ).then(setItems);
  }, [me]);
  return items;
}

// One BrowserPhone per chosen extension, registered while the page is shown.
function usePhone(extensionId, audio) {
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  const [phone, setPhone] = useState(null);
  useEffect(() => {
    if (!extensionId) return undefined;
    let current = null;
    let gone = false;
    setError(null);
    post('/me/browser-phone', { extension_id: Number(extensionId) }).then(
      (credentials) => {
        if (gone) return;
        current = new BrowserPhone(credentials, audio.current);
        current.addEventListener('change', (e) => setState(e.detail));
        setPhone(current);
        setState(current.state);
        current.start();
      },
      (err) => !gone && setError(err),
    );
    // Leaving the page unregisters too (best effort: the socket may close first).
    const leave = () => current?.stop();
    window.addEventListener('pagehide', leave);
    return () => {
      gone = true;
      window.removeEventListener('pagehide', leave);
      current?.stop();
      setPhone(null);
      setState(null);
    };
  }, [extensionId]);
  return { phone, state, error };
}

function registrationText(state, ext) {
  const e = state.error || {};
  return t(`reg_${state.registration}`, { ext, status: e.status ?? '', reason: e.reason ?? '' });
}

function callText(call) {
  if (!call) return t('noCall');
  const status = call.held && call.status === 'connected' ? 'held' : call.status;
  return t(`call_${status}`, { peer: call.peer });
}

function DialForm({ label, action, onSubmit, name }) {
  const [value, setValue] = useState('');
  const [bad, setBad] = useState(false);
  const id = `phone-${name}`;
  const submit = (e) => {
    e.preventDefault();
    if (!normaliseTarget(value)) {
      setBad(true);
      return;
    }
    setBad(false);
    onSubmit(value);
  };
  return html`<form class="phone-dial" onSubmit=${submit}>
    <div class="field">
      <label for=${id}>${label}</label>
      <input id=${id} name=${name} type="tel" inputmode="tel" autocomplete="off" required
        value=${value} onInput=${(e) => setValue(e.target.value)}
        aria-describedby=${`${id}-hint${bad ? ` ${id}-err` : ''}`} aria-invalid=${bad ? 'true' : undefined} />
      <p class="hint" id=${`${id}-hint`}>${t('numberHint')}</p>
      ${bad && html`<p class="field-error" id=${`${id}-err`} role="alert">${t('badNumber')}</p>`}
    </div>
    <button type="submit">${action}</button>
  </form>`;
}

function Keypad({ phone }) {
  return html`<div class="phone-keypad" role="group" aria-label=${t('keypad')}>
    ${DTMF_KEYS.map(
      (key) => html`<button type="button" class="key" aria-label=${t('key', { key })}
        onClick=${() => phone.dtmf(key)}>${key}</button>`,
    )}
  </div>`;
}

function CallControls({ phone, call }) {
  if (call.status === 'ringing') {
    return html`<div class="phone-actions">
      <button type="button" class="primary" onClick=${() => phone.answer()}>${t('answer')}</button>
      <button type="button" class="danger" onClick=${() => phone.decline()}>${t('decline')}</button>
    </div>`;
  }
  const connected = call.status === 'connected';
  return html`<div class="phone-actions">
      <button type="button" class="danger" onClick=${() => phone.hangup()}>${t('hangup')}</button>
      ${connected &&
      html`<button type="button" aria-pressed=${call.held ? 'true' : 'false'}
          onClick=${() => (call.held ? phone.resume() : phone.hold())}>
          ${call.held ? t('resume') : t('hold')}</button>
        <button type="button" aria-pressed=${call.muted ? 'true' : 'false'}
          onClick=${() => (call.muted ? phone.unmute() : phone.mute())}>
          ${call.muted ? t('unmute') : t('mute')}</button>`}
    </div>
    ${connected && html`<${Keypad} phone=${phone} />`}
    ${connected &&
    html`<${DialForm} name="transfer" label=${t('transferTo')} action=${t('transfer')}
      onSubmit=${(v) => phone.transfer(v)} />`}
    ${call.transfer && html`<p>${t(`transfer_${call.transfer}`)}</p>`}`;
}

// The button a keyboard user pressed (answer, hang up, call) goes away with the state it
// belonged to; focus would fall back to the page's start. It moves to what comes next instead:
// the first call control (hang up) during a call, the number field after it. Only when focus
// was lost: nobody is pulled out of a field they are in.
function useFocusFollowsCall(box, status) {
  useEffect(() => {
    const current = document.activeElement;
    if (current && current !== document.body) return;
    const next = box.current?.querySelector('.phone-actions button, #phone-target');
    next?.focus();
  }, [status]);
}

export default function PhonePage() {
  const { me } = useSession();
  const extensions = useExtensions(me);
  const [chosen, setChosen] = useState(null);
  const audio = useRef(null);
  const extensionId = chosen ?? extensions?.[0]?.id ?? null;
  const { phone, state, error } = usePhone(extensionId, audio);
  const ext = extensions?.find((x) => x.id === Number(extensionId))?.label ?? '';
  const call = state?.call;
  const active = call && call.status !== 'ended';
  const callError = state?.error && state.registration === 'registered' ? state.error : null;
  const box = useRef(null);
  useFocusFollowsCall(box, active ? call.status : 'idle');

  return html`<${Page} title=${t('title')}>
    <div class="phone" ref=${box} data-registration=${state?.registration ?? 'idle'}
      data-call=${call?.status ?? 'none'} data-call-id=${call?.callId ?? ''}>
      ${extensions && !extensions.length && html`<p>${t('noExtension')}</p>`}
      ${extensions?.length > 1 &&
      html`<div class="field">
        <label for="phone-extension">${t('extension')}</label>
        <select id="phone-extension" value=${extensionId} disabled=${active}
          onChange=${(e) => setChosen(Number(e.target.value))}>
          ${extensions.map((x) => html`<option value=${x.id}>${x.label}</option>`)}
        </select>
      </div>`}
      <${ErrorAlert} error=${error} />
      ${state &&
      html`<p class=${`phone-registration reg-${state.registration}`} role="status"
        aria-live="polite" id="phone-registration">${registrationText(state, ext)}</p>`}
      <p class=${`phone-call call-${call?.status ?? 'none'}`} role="status" aria-live="assertive"
        aria-atomic="true" id="phone-call">
        ${callText(call)}${call?.muted ? ` – ${t('muted')}` : ''}
      </p>
      ${callError &&
      html`<p class="alert" role="alert">
        ${t('callRefused', { status: callError.status ?? '', reason: callError.reason ?? '' })}</p>`}
      ${phone && active && html`<${CallControls} phone=${phone} call=${call} />`}
      ${phone && !active && state?.registration === 'registered' &&
      html`<${DialForm} name="target" label=${t('number')} action=${t('call')}
        onSubmit=${(v) => phone.call(v)} />`}
      <audio ref=${audio} autoplay aria-label=${t('remoteAudio')}></audio>
    </div>
  <//>`;
}
