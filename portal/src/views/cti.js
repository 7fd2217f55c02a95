// CTI: the customer's calls as they happen (a WebSocket of call events, resumed after the last one
// shown, so nothing is missed across reconnects and reloads of the tab), click-to-dial from one's
// own phone, and for admins what CTI Premium adds: the CRM lookup and webhooks. Everything the
// server sends is rendered as text; the only link from its data is an http(s) CRM link.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Redirect } from 'wouter-preact';
import { API, del, get, post, put } from '../api.js';
import { language, translator } from '../i18n.js';
import { isAdmin, isOperator, ownCustomer, useSession } from '../session.js';
import { ErrorAlert, Field, FormError, Loaded, Notice, Page, Table, common, confirmDelete, useForm, useLoad } from '../ui.js';

const t = translator('cti', {
  de: {
    title: 'CTI',
    level: 'Gebuchte CTI-Stufe',
    level_none: 'nicht gebucht',
    level_standard: 'CTI Standard',
    level_premium: 'CTI Premium',
    notBooked: 'CTI ist für diesen Kunden nicht gebucht.',
    otherCustomer: 'Das sind die Anrufe eines anderen Kunden.',
    premiumNeeded: 'Dafür ist „CTI Premium“ nötig; gebucht ist CTI Standard.',
    operatorNote: 'Click-to-Dial ist für die Benutzer des Kunden, von ihren eigenen Telefonen.',
    live: 'Anrufe live',
    conn_connecting: 'Verbinde …',
    conn_open: 'Verbunden: neue Anrufe erscheinen sofort.',
    conn_retry: 'Verbindung unterbrochen; neuer Versuch in {{s}} s.',
    calls: 'Anrufe',
    noCalls: 'Noch keine Anrufe.',
    time: 'Zeit',
    direction: 'Richtung',
    from: 'Von',
    to: 'An',
    state: 'Status',
    dir_inbound: 'eingehend',
    dir_outbound: 'ausgehend',
    dir_internal: 'intern',
    kind_ringing: 'klingelt',
    kind_answered: 'angenommen',
    kind_held: 'gehalten',
    kind_resumed: 'fortgesetzt',
    kind_transferred: 'weitergeleitet',
    kind_transferredTo: 'weitergeleitet an {{to}}',
    kind_ended: 'beendet',
    caller: 'Anrufer: {{who}}',
    callerNumber: 'Von {{from}} an {{to}}',
    crmOpen: 'Im CRM öffnen',
    crmLink: 'CRM-Verweis (kein Web-Link): {{link}}',
    dial: 'Click-to-Dial',
    target: 'Rufnummer',
    targetHint: 'Zuerst klingelt Ihr Telefon; sobald Sie abheben, wird die Nummer gewählt.',
    extension: 'Von Nebenstelle',
    call: 'Anrufen',
    st_calling_you: 'Ihr Telefon klingelt – bitte abheben.',
    st_connecting: 'Verbinde mit {{target}} …',
    st_connected: 'Verbunden mit {{target}}.',
    st_failed: 'Nicht verbunden.',
    st_failedCause: 'Nicht verbunden: {{cause}}',
    pollGaveUp: 'Keine weitere Statusabfrage nach {{min}} Minuten.',
    crm: 'CRM-Abfrage',
    crmTemplate: 'URL-Vorlage',
    crmHint: '{number} wird durch die Rufnummer des Anrufers ersetzt. Leer lassen, um die Abfrage abzuschalten.',
    webhooks: 'Webhooks',
    webhookList: 'Webhooks des Kunden',
    noWebhooks: 'Noch keine Webhooks.',
    url: 'URL',
    active: 'Aktiv',
    created: 'Angelegt',
    addWebhook: 'Webhook hinzufügen',
    add: 'Hinzufügen',
    secretOnce: 'Das Geheimnis des neuen Webhooks für {{url}} – es wird nur jetzt angezeigt. Damit ist jede Zustellung signiert.',
    deliveries: 'Zustellungen',
    deliveriesName: 'Zustellungen an {{url}} anzeigen',
    deliveriesOf: 'Zustellungen an {{url}}',
    noDeliveries: 'Noch keine Zustellungen an {{url}}.',
    deleteName: 'Webhook {{url}} löschen',
    refresh: 'Aktualisieren',
    hide: 'Ausblenden',
    event: 'Ereignis',
    status: 'Status',
    attempts: 'Versuche',
    lastCode: 'Letzte Antwort',
    lastError: 'Fehler',
    deliveredAt: 'Zugestellt',
    nextAttempt: 'Nächster Versuch',
    dst_pending: 'ausstehend',
    dst_delivered: 'zugestellt',
    dst_failed: 'fehlgeschlagen',
  },
  en: {
    title: 'CTI',
    level: 'Booked CTI level',
    level_none: 'not booked',
    level_standard: 'CTI Standard',
    level_premium: 'CTI Premium',
    notBooked: 'CTI is not booked for this customer.',
    otherCustomer: 'These are another customer’s calls.',
    premiumNeeded: 'This needs "CTI Premium"; CTI Standard is booked.',
    operatorNote: 'Click-to-dial is for the customer’s users, from their own phones.',
    live: 'Live calls',
    conn_connecting: 'Connecting …',
    conn_open: 'Connected: new calls appear at once.',
    conn_retry: 'Connection lost; trying again in {{s}} s.',
    calls: 'Calls',
    noCalls: 'No calls yet.',
    time: 'Time',
    direction: 'Direction',
    from: 'From',
    to: 'To',
    state: 'State',
    dir_inbound: 'inbound',
    dir_outbound: 'outbound',
    dir_internal: 'internal',
    kind_ringing: 'ringing',
    kind_answered: 'answered',
    kind_held: 'on hold',
    kind_resumed: 'resumed',
    kind_transferred: 'transferred',
    kind_transferredTo: 'transferred to {{to}}',
    kind_ended: 'ended',
    caller: 'Caller: {{who}}',
    callerNumber: 'From {{from}} to {{to}}',
    crmOpen: 'Open in the CRM',
    crmLink: 'CRM reference (not a web link): {{link}}',
    dial: 'Click-to-dial',
    target: 'Number',
    targetHint: 'Your phone rings first; once you pick up, the number is dialled.',
    extension: 'From extension',
    call: 'Call',
    st_calling_you: 'Your phone is ringing – please pick up.',
    st_connecting: 'Connecting to {{target}} …',
    st_connected: 'Connected to {{target}}.',
    st_failed: 'Not connected.',
    st_failedCause: 'Not connected: {{cause}}',
    pollGaveUp: 'No further status checks after {{min}} minutes.',
    crm: 'CRM lookup',
    crmTemplate: 'URL template',
    crmHint: '{number} is replaced by the caller’s number. Leave empty to switch the lookup off.',
    webhooks: 'Webhooks',
    webhookList: 'The customer’s webhooks',
    noWebhooks: 'No webhooks yet.',
    url: 'URL',
    active: 'Active',
    created: 'Created',
    addWebhook: 'Add a webhook',
    add: 'Add',
    secretOnce: 'The secret of the new webhook for {{url}} – shown only now. Every delivery is signed with it.',
    deliveries: 'Deliveries',
    deliveriesName: 'Show the deliveries to {{url}}',
    deliveriesOf: 'Deliveries to {{url}}',
    noDeliveries: 'No deliveries to {{url}} yet.',
    deleteName: 'Delete webhook {{url}}',
    refresh: 'Refresh',
    hide: 'Hide',
    event: 'Event',
    status: 'Status',
    attempts: 'Attempts',
    lastCode: 'Last answer',
    lastError: 'Error',
    deliveredAt: 'Delivered',
    nextAttempt: 'Next attempt',
    dst_pending: 'pending',
    dst_delivered: 'delivered',
    dst_failed: 'failed',
  },
});

// A list answer: a bare array, or the API's usual {items: [...]}.
const itemsOf = (d) => (Array.isArray(d) ? d : (d?.items ?? []));

function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(language(), { dateStyle: 'short', timeStyle: 'medium' }).format(d);
}

// A link from the CRM is followed only if it is http(s); anything else stays text.
export function webLink(link) {
  if (typeof link !== 'string') return null;
  try {
    const u = new URL(link);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

// --- live call events ---------------------------------------------------------------------------

const MAX_CALLS = 100; // rows kept (and stored in the tab's sessionStorage)
const BACKOFF_MAX_MS = 15000;
const CLOSE_REFUSED = 4403; // CTI not booked, or another customer's events

// The tab's memory of the stream: the last acknowledged seq and the calls shown so far, so that
// a reload or a trip to another page resumes where it was (after=acked) with the table intact.
function loadStore(key) {
  try {
    const s = JSON.parse(sessionStorage.getItem(key) || 'null');
    if (s && (s.acked === null || Number.isSafeInteger(s.acked)) && Array.isArray(s.calls)) return s;
  } catch {
    // an unreadable entry: start afresh
  }
  return { acked: null, calls: [] };
}

function saveStore(key, store) {
  try {
    sessionStorage.setItem(key, JSON.stringify(store));
  } catch {
    // storage full or refused: the stream still works, a reload starts afresh
  }
}

// One event onto the calls: the call's row (made by its first event) takes the event's state.
function applyEvent(calls, ev) {
  const old = calls.find((c) => c.call_id === ev.call_id);
  const call = {
    call_id: ev.call_id,
    first_seq: old?.first_seq ?? ev.seq,
    seq: ev.seq,
    kind: ev.kind,
    direction: ev.direction ?? old?.direction,
    from_number: ev.from_number ?? old?.from_number,
    to_number: ev.to_number ?? old?.to_number,
    occurred_at: ev.occurred_at,
    crm: ev.crm ?? old?.crm ?? null,
    code: ev.code ?? null,
    reason: ev.reason ?? null,
    refer_to: ev.refer_to ?? old?.refer_to ?? null,
  };
  return [call, ...calls.filter((c) => c !== old)].sort((a, b) => b.first_seq - a.first_seq).slice(0, MAX_CALLS);
}

// `customer`: an operator's choice of customer (everyone else has their own).
function socketUrl(after, customer) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = new URLSearchParams();
  if (after !== null) q.set('after', String(after));
  if (customer !== null) q.set('customer_id', String(customer));
  const query = q.toString();
  return `${scheme}//${location.host}${API}/call-events/ws${query ? `?${query}` : ''}`;
}

// Why the stream is refused, in words where the reason is one of the API's codes.
function refusal(reason) {
  const known = { cti_not_booked: t('notBooked'), customer_scope_violation: t('otherCustomer') };
  return known[reason] ? { message: known[reason], code: reason } : { message: reason || t('notBooked'), code: '' };
}

// The stream: {calls, conn}; conn.state is connecting | open | retry (conn.seconds) | refused
// (conn.reason of a 4403 close, or conn.message and conn.code of the API's refusal). Each event is acknowledged ({"ack": seq}) once the render showing
// it is done; a reconnect resumes after the last one (after=), so none is missed or shown twice.
function useCallEvents(key, customer) {
  const [store, setStore] = useState(() => loadStore(key));
  const [conn, setConn] = useState({ state: 'connecting' });
  const storeRef = useRef(store);
  const socket = useRef(null);
  const shown = useRef([]); // seqs rendered, not yet acknowledged

  useEffect(() => {
    let stopped = false;
    let attempt = 0;
    let timer = null;
    let seen = storeRef.current.acked; // the highest seq taken in (dropped when seen again)

    const remember = (acked) => {
      storeRef.current = { ...storeRef.current, acked };
      saveStore(key, storeRef.current);
    };

    const onEvent = (ev) => {
      if (!Number.isSafeInteger(ev.seq) || typeof ev.call_id !== 'string') return;
      if (seen !== null && ev.seq <= seen) return; // a repeat after a reconnect
      seen = ev.seq;
      const next = { ...storeRef.current, calls: applyEvent(storeRef.current.calls, ev) };
      storeRef.current = next;
      shown.current.push(ev.seq);
      setStore(next);
    };

    // A handshake the server turned down reaches the page as a bare 1006: the same question over
    // HTTP says why (403: not booked, another customer; a 401 brings the login back).
    const probe = () => {
      const q = new URLSearchParams({ after: String(Number.MAX_SAFE_INTEGER) });
      if (customer !== null) q.set('customer_id', String(customer));
      get(`/call-events?${q}`).catch((err) => {
        if (!stopped && err.status === 403) {
          clearTimeout(timer);
          stopped = true;
          setConn({ state: 'refused', message: err.message, code: err.code });
        }
      });
    };

    const connect = () => {
      setConn({ state: 'connecting' });
      let greeted = false;
      let restart = false;
      const ws = new WebSocket(socketUrl(storeRef.current.acked, customer));
      socket.current = ws;
      ws.onmessage = (m) => {
        let msg;
        try {
          msg = JSON.parse(m.data);
        } catch {
          return;
        }
        if (msg?.type === 'hello') {
          greeted = true;
          attempt = 0;
          if (storeRef.current.acked === null && Number.isSafeInteger(msg.last_seq)) {
            // A fresh tab: the calls from now on, not the days the server keeps; resume there.
            seen = Math.max(seen ?? 0, msg.last_seq);
            remember(msg.last_seq);
            restart = true;
            ws.close(1000);
            return;
          }
          setConn({ state: 'open' });
        } else if (msg?.type === 'event' && !restart) {
          onEvent(msg);
        }
      };
      ws.onclose = (e) => {
        if (socket.current === ws) socket.current = null;
        if (stopped) return;
        if (restart) {
          connect();
          return;
        }
        if (e.code === CLOSE_REFUSED) {
          stopped = true;
          setConn({ state: 'refused', reason: e.reason });
          return;
        }
        if (!greeted) probe();
        const delay = Math.min(1000 * 2 ** attempt, BACKOFF_MAX_MS);
        attempt += 1;
        setConn({ state: 'retry', seconds: delay / 1000 });
        timer = setTimeout(connect, delay);
      };
    };

    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      socket.current?.close(1000);
      socket.current = null;
    };
  }, [key, customer]);

  // After the render that shows them: acknowledge the new events and remember the last one.
  useEffect(() => {
    if (!shown.current.length) return;
    const seqs = shown.current;
    shown.current = [];
    const ws = socket.current;
    for (const seq of seqs) {
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ ack: seq }));
    }
    storeRef.current = { ...storeRef.current, acked: Math.max(storeRef.current.acked ?? 0, ...seqs) };
    saveStore(key, storeRef.current);
  }, [store, key]);

  return { calls: store.calls, conn };
}

function stateText(c) {
  if (c.kind === 'transferred' && c.refer_to) return t('kind_transferredTo', { to: c.refer_to });
  const text = t(`kind_${c.kind}`, { defaultValue: String(c.kind) });
  if (c.kind === 'ended' && (c.code || c.reason)) return `${text} (${[c.code, c.reason].filter(Boolean).join(' ')})`;
  return text;
}

function CallerCard({ call }) {
  const { crm } = call;
  const who = [crm.name, crm.company].filter((x) => x !== null && x !== undefined && x !== '').join(', ');
  const href = webLink(crm.link);
  return html`<article class="cti-caller">
    <p class="cti-caller-name">${t('caller', { who: who || call.from_number || '–' })}</p>
    <p>${t('callerNumber', { from: call.from_number ?? '–', to: call.to_number ?? '–' })}</p>
    ${href && html`<p><a href=${href} target="_blank" rel="noopener noreferrer">${t('crmOpen')}</a></p>`}
    ${!href && crm.link && html`<p class="hint">${t('crmLink', { link: String(crm.link) })}</p>`}
  </article>`;
}

function LiveCalls({ storeKey, customer }) {
  const { calls, conn } = useCallEvents(storeKey, customer);
  const refused = conn.state === 'refused' && (conn.reason !== undefined ? refusal(conn.reason) : conn);
  const ringing = calls.filter((c) => c.kind === 'ringing' && c.direction === 'inbound' && c.crm);
  return html`<section aria-labelledby="cti-live">
    <h2 id="cti-live">${t('live')}</h2>
    ${refused
      ? html`<div class="alert" role="alert" id="cti-refused">${refused.message}${refused.code && html` <code class="code">${refused.code}</code>`}</div>`
      : html`<p class="cti-conn" role="status">${t(`conn_${conn.state}`, { s: conn.seconds })}</p>`}
    <div class="cti-callers" aria-live="polite">
      ${ringing.map((c) => html`<${CallerCard} key=${c.call_id} call=${c} />`)}
    </div>
    <${Table} caption=${t('calls')} empty=${t('noCalls')}
      head=${[t('time'), t('direction'), t('from'), t('to'), t('state')]}
      rows=${calls.map((c) => [when(c.occurred_at), t(`dir_${c.direction}`, { defaultValue: String(c.direction ?? '–') }), c.from_number ?? '–', c.to_number ?? '–', stateText(c)])} />
  </section>`;
}

// --- click-to-dial ------------------------------------------------------------------------------

const FINAL = ['connected', 'failed'];
const POLL_MS = 1000;
const POLL_LIMIT_MIN = 3;

function dialText(r) {
  if (r.status === 'failed') return r.cause ? t('st_failedCause', { cause: r.cause }) : t('st_failed');
  return t(`st_${r.status}`, { target: r.target, defaultValue: String(r.status) });
}

// The extensions whose phones may ring first, as [id, label] when there is a choice to make:
// a user's own (GET /me) when several; an admin with none of their own may use any of the
// customer's. One of one's own: no choice, the API takes it.
function dialFrom(cid, me) {
  const ids = me.extension_ids ?? [];
  const label = (x) => (x.display_name ? `${x.number} – ${x.display_name}` : x.number);
  if (ids.length > 1) {
    return Promise.all(ids.map((id) => get(`/customers/${cid}/extensions/${id}`).then(
      (x) => [String(id), label(x)],
      () => [String(id), String(id)],
    )));
  }
  if (ids.length === 0 && me.role === 'customer_admin') {
    return get(`/customers/${cid}/extensions?limit=1000`).then((d) => d.items.map((x) => [String(x.id), label(x)]));
  }
  return Promise.resolve([]);
}

function ClickToDial({ cid, me }) {
  const exts = useLoad(() => dialFrom(cid, me), [cid, (me.extension_ids ?? []).join()]);
  const f = useForm({ target: '', extension_id: '' });
  const [req, setReq] = useState(null);
  const [pollError, setPollError] = useState(null);
  const [gaveUp, setGaveUp] = useState(false);
  const timer = useRef(null);
  // The request being followed: a new one (or leaving the page) ends the polling of the last.
  const current = useRef(0);
  useEffect(() => () => {
    current.current = -1;
    clearTimeout(timer.current);
  }, []);

  const poll = (id, deadline) => {
    timer.current = setTimeout(async () => {
      if (current.current !== id) return;
      if (Date.now() > deadline) {
        setGaveUp(true);
        return;
      }
      try {
        const r = await get(`/click-to-dial/${id}`);
        if (current.current !== id) return;
        setReq(r);
        if (!FINAL.includes(r.status)) poll(id, deadline);
      } catch (err) {
        if (current.current === id) setPollError(err);
      }
    }, POLL_MS);
  };

  const options = exts.data ?? [];
  const submit = f.submit(async (v) => {
    clearTimeout(timer.current);
    current.current = 0;
    setReq(null);
    setPollError(null);
    setGaveUp(false);
    const body = { target: v.target.trim() };
    if (options.length) body.extension_id = Number(v.extension_id || options[0][0]);
    const r = await post('/click-to-dial', body);
    if (current.current === -1) return;
    current.current = r.id;
    setReq(r);
    if (!FINAL.includes(r.status)) poll(r.id, Date.now() + POLL_LIMIT_MIN * 60000);
  });

  return html`<form onSubmit=${submit} class="form narrow" aria-labelledby="cti-dial">
    <h2 id="cti-dial">${t('dial')}</h2>
    <${FormError} error=${f.error} fields=${options.length ? ['target', 'extension_id'] : ['target']} />
    <${Field} label=${t('target')} name="target" type="tel" autocomplete="off" required hint=${t('targetHint')}
      value=${f.values.target} onInput=${f.set('target')} error=${f.error} />
    ${options.length > 0 && html`<${Field} label=${t('extension')} name="extension_id" type="select" options=${options}
      value=${f.values.extension_id || options[0][0]} onInput=${f.set('extension_id')} error=${f.error} />`}
    <button type="submit" disabled=${f.busy}>${t('call')}</button>
    <p class="cti-dial-status" role="status">${req ? dialText(req) : ''}${gaveUp ? ` ${t('pollGaveUp', { min: POLL_LIMIT_MIN })}` : ''}</p>
    <${ErrorAlert} error=${pollError} />
  </form>`;
}

// --- CTI Premium: CRM lookup and webhooks (admins) ----------------------------------------------

function CrmTemplate({ cid }) {
  const state = useLoad(() => get(`/customers/${cid}/cti`), [cid]);
  const f = useForm({ crm_url_template: null });
  const [saved, setSaved] = useState(false);
  return html`<${Loaded} state=${state}>${(d) => {
    const value = f.values.crm_url_template ?? d.crm_url_template ?? '';
    const submit = f.submit(async () => {
      setSaved(false);
      const r = await put(`/customers/${cid}/cti`, { crm_url_template: value.trim() || null });
      f.setValues({ crm_url_template: r.crm_url_template ?? '' });
      setSaved(true);
    });
    return html`<form onSubmit=${submit} class="form" aria-labelledby="cti-crm">
      <h2 id="cti-crm">${t('crm')}</h2>
      <${FormError} error=${f.error} fields=${['crm_url_template']} />
      ${saved && html`<${Notice}>${common('saved')}<//>`}
      <${Field} label=${t('crmTemplate')} name="crm_url_template" inputmode="url" hint=${t('crmHint')}
        placeholder="https://crm.example/lookup?number={number}" value=${value}
        onInput=${(v) => { setSaved(false); f.set('crm_url_template')(v); }} error=${f.error} />
      <button type="submit" disabled=${f.busy}>${common('save')}</button>
    </form>`;
  }}<//>`;
}

function Deliveries({ base, hook, onHide }) {
  const list = useLoad(() => get(`${base}/${hook.id}/deliveries`).then(itemsOf), [base, hook.id]);
  return html`<div class="cti-deliveries">
    <div class="row">
      <button type="button" class="secondary" onClick=${list.reload}>${t('refresh')}</button>
      <button type="button" class="secondary" onClick=${onHide}>${t('hide')}</button>
    </div>
    <${Loaded} state=${list}>${(items) => html`<${Table} caption=${t('deliveriesOf', { url: hook.url })} empty=${t('noDeliveries', { url: hook.url })}
      head=${[t('event'), t('status'), t('attempts'), t('lastCode'), t('lastError'), t('deliveredAt'), t('nextAttempt')]}
      rows=${items.map((x) => [x.event_seq, t(`dst_${x.status}`, { defaultValue: String(x.status) }), x.attempts,
        x.last_code ?? '–', x.last_error || '–', when(x.delivered_at), x.status === 'pending' ? when(x.next_attempt_at) : '–'])} />`}<//>
  </div>`;
}

function Webhooks({ cid }) {
  const base = `/customers/${cid}/webhooks`;
  const list = useLoad(() => get(base).then(itemsOf), [base]);
  const f = useForm({ url: '' });
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  const submit = f.submit(async (v) => {
    setCreated(null);
    setCreated(await post(base, { url: v.url.trim() }));
    f.setValues({ url: '' });
    list.reload();
  });
  const remove = (w) => {
    if (!confirmDelete(w.url)) return;
    setError(null);
    del(`${base}/${w.id}`).then(() => {
      if (open?.id === w.id) setOpen(null);
      if (created?.id === w.id) setCreated(null);
      list.reload();
    }, setError);
  };
  return html`<section aria-labelledby="cti-webhooks">
    <h2 id="cti-webhooks">${t('webhooks')}</h2>
    <${ErrorAlert} error=${error} />
    <${Loaded} state=${list}>${(items) => html`<${Table} caption=${t('webhookList')} empty=${t('noWebhooks')}
      head=${[t('url'), t('active'), t('created'), common('actions')]}
      rows=${items.map((w) => [w.url, common(w.active ? 'yes' : 'no'), when(w.created_at), html`
        <button type="button" class="secondary" aria-label=${t('deliveriesName', { url: w.url })} aria-expanded=${open?.id === w.id ? 'true' : 'false'}
          onClick=${() => setOpen(open?.id === w.id ? null : w)}>${t('deliveries')}</button>
        <button type="button" class="secondary" aria-label=${t('deleteName', { url: w.url })} onClick=${() => remove(w)}>${common('delete')}</button>`])} />`}<//>
    ${open && html`<${Deliveries} key=${open.id} base=${base} hook=${open} onHide=${() => setOpen(null)} />`}
    <form onSubmit=${submit} class="form" aria-labelledby="cti-new-webhook">
      <h3 id="cti-new-webhook">${t('addWebhook')}</h3>
      <${FormError} error=${f.error} fields=${['url']} />
      <${Field} label=${t('url')} name="url" inputmode="url" required placeholder="https://" value=${f.values.url} onInput=${f.set('url')} error=${f.error} />
      <button type="submit" disabled=${f.busy}>${t('add')}</button>
      ${created && html`<div class="secret" role="status"><p>${t('secretOnce', { url: created.url })}</p><code>${created.secret}</code></div>`}
    </form>
  </section>`;
}

function PremiumSettings({ cid, level }) {
  if (level !== 'premium') {
    return html`<section aria-labelledby="cti-premium">
      <h2 id="cti-premium">${t('crm')}, ${t('webhooks')}</h2>
      <p class="notice">${t('premiumNeeded')}</p>
    </section>`;
  }
  return html`<${CrmTemplate} cid=${cid} /><${Webhooks} cid=${cid} />`;
}

// --- the page -----------------------------------------------------------------------------------

export function Cti({ params }) {
  const { cid } = params;
  const { me } = useSession();
  const state = useLoad(() => get(`/customers/${cid}`), [cid]);
  const tenant = !isOperator(me);
  // Per person and customer: another login in the same tab starts its own stream.
  const storeKey = `pbx.cti.${me.user?.id ?? 'x'}.${cid}`;
  return html`<${Page} title=${t('title')}>
    <${Loaded} state=${state}>${(c) => {
      const level = c.cti ?? 'none';
      return html`
        <dl class="facts"><dt>${t('level')}</dt><dd id="cti-level">${t(`level_${level}`, { defaultValue: String(level) })}</dd></dl>
        ${level === 'none'
          ? html`<${Notice}>${t('notBooked')}<//>`
          : html`
            <${LiveCalls} storeKey=${storeKey} customer=${tenant ? null : Number(cid)} />
            ${tenant ? html`<${ClickToDial} cid=${cid} me=${me} />` : html`<p class="hint">${t('operatorNote')}</p>`}
            ${isAdmin(me) && html`<${PremiumSettings} cid=${cid} level=${level} />`}`}`;
    }}<//>
  <//>`;
}

// #/cti: one's own customer's CTI page (an operator first picks a customer).
export function CtiHome() {
  const { me } = useSession();
  const cid = ownCustomer(me);
  return html`<${Redirect} to=${cid === null ? '/customers' : `/customers/${cid}/cti`} replace />`;
}
