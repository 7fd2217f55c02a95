// The browser phone's SIP side: JsSIP over WSS to the proxies, DTLS-SRTP media through the
// relay. No UI here: a view subscribes to 'change' and renders `phone.state`; everything a user
// does is one method. One call at a time (a second incoming call is answered busy).
//
// The REGISTER reply's GRUU becomes JsSIP's Contact (RFC 5627); the proxies answer for it, so
// nothing here works around it.
import JsSIP from 'jssip';

// Digits a user may dial: extensions, outside numbers (+49..., 0...), star codes (#31#).
const DIALABLE = /^[+]?[0-9*#]{1,32}$/;
export const DTMF_KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

// What the view shows: `registration` is one of idle | connecting | registered | failed | stopped;
// `call` is null or {direction, peer, callId, status: ringing | calling | early | connected |
// ended, held, muted, cause, transfer}; `error` the last refusal {status, reason} (registration or call).
const INITIAL = { registration: 'idle', call: null, error: null, server: null };

// One +sip.instance per browser and extension (RFC 5626), kept across page loads: a reloaded
// page re-registers in place of its earlier binding instead of taking another of the
// extension's few contacts (1, or 3 with the Business Option) until that one expires.
function instanceId(sipUri) {
  const key = `pbx.phone.instance:${sipUri}`;
  try {
    let id = localStorage.getItem(key);
    if (!id) {
      id = crypto.randomUUID();
      localStorage.setItem(key, id);
    }
    return id;
  } catch {
    return undefined; // storage refused (private mode): JsSIP makes one per page
  }
}

export function normaliseTarget(text) {
  const digits = String(text).replace(/[\s\-/().]/g, '');
  return DIALABLE.test(digits) ? digits : null;
}

export class BrowserPhone extends EventTarget {
  // credentials: the answer of POST /api/v1/me/browser-phone; audio: an <audio> element for the
  // far end; jssip: JsSIP itself (tests may pass a stand-in).
  constructor(credentials, audio, jssip = JsSIP) {
    super();
    this.credentials = credentials;
    this.audio = audio;
    this.jssip = jssip;
    this.ua = null;
    this.session = null;
    this.state = { ...INITIAL };
  }

  _set(patch) {
    this.state = { ...this.state, ...patch };
    this.dispatchEvent(new CustomEvent('change', { detail: this.state }));
  }

  _setCall(patch) {
    if (!this.state.call) return;
    this._set({ call: { ...this.state.call, ...patch } });
  }

  // Registers over the first server that answers: ws_servers come home site first, so they get
  // falling weights and JsSIP tries them in that order, the next one when a socket fails.
  start() {
    const c = this.credentials;
    const n = c.ws_servers.length;
    const sockets = c.ws_servers.map((url, i) => ({
      socket: new this.jssip.WebSocketInterface(url),
      weight: n - i,
    }));
    this.ua = new this.jssip.UA({
      sockets,
      uri: c.sip_uri,
      authorization_user: c.authorization_user,
      password: c.password,
      realm: c.realm,
      display_name: c.display_name,
      register: true,
      instance_id: instanceId(c.sip_uri),
      session_timers: false,
      user_agent: 'pbx-portal',
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
    });
    this.ua.on('connected', (e) => this._set({ server: e.socket?.url ?? null }));
    this.ua.on('disconnected', () => {
      if (this.state.registration !== 'stopped') this._set({ registration: 'connecting' });
    });
    this.ua.on('registered', () => this._set({ registration: 'registered', error: null }));
    this.ua.on('unregistered', () => {
      if (this.state.registration !== 'stopped') this._set({ registration: 'idle' });
    });
    this.ua.on('registrationFailed', (e) => {
      // The proxy's answer as it came (e.g. 403 and its reason); a cause when there was none.
      const r = e.response;
      this._set({
        registration: 'failed',
        error: r ? { status: r.status_code, reason: r.reason_phrase } : { status: null, reason: e.cause },
      });
    });
    this.ua.on('newRTCSession', (e) => this._newSession(e));
    this._set({ registration: 'connecting', error: null });
    this.ua.start();
  }

  stop() {
    this._set({ registration: 'stopped' });
    if (this.session && !this.session.isEnded()) this.session.terminate();
    this.ua?.stop();
    this.ua = null;
  }

  _newSession({ originator, session, request }) {
    if (this.session && !this.session.isEnded()) {
      if (originator === 'remote') session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      return;
    }
    this.session = session;
    const who = session.remote_identity;
    const peer = who?.display_name ? `${who.display_name} (${who.uri.user})` : who?.uri?.user ?? '';
    this._set({
      call: {
        direction: originator === 'remote' ? 'incoming' : 'outgoing',
        peer,
        // The call's SIP Call-ID: what the relay and the call records know it by (support).
        callId: request?.call_id ?? '',
        status: originator === 'remote' ? 'ringing' : 'calling',
        held: false,
        muted: false,
        cause: null,
      },
      error: null,
    });
    // Outgoing: JsSIP made the peer connection before announcing the session; incoming: it
    // makes one on answer.
    if (session.connection) this._playRemote(session.connection);
    session.on('peerconnection', (ev) => this._playRemote(ev.peerconnection));
    session.on('progress', () => {
      if (originator === 'local') this._setCall({ status: 'early' });
    });
    session.on('accepted', () => this._setCall({ status: 'connected' }));
    session.on('confirmed', () => this._setCall({ status: 'connected' }));
    session.on('hold', () => this._setCall({ held: true }));
    session.on('unhold', () => this._setCall({ held: false }));
    session.on('muted', () => this._setCall({ muted: true }));
    session.on('unmuted', () => this._setCall({ muted: false }));
    const end = (ev) => {
      if (this.session !== session) return;
      const r = ev.message && ev.originator === 'remote' ? ev.message : null;
      this._setCall({ status: 'ended', cause: ev.cause, held: false });
      if (r && r.status_code >= 300) this._set({ error: { status: r.status_code, reason: r.reason_phrase } });
      this.session = null;
      this.audio.srcObject = null;
    };
    session.on('ended', end);
    session.on('failed', end);
  }

  _playRemote(pc) {
    const attach = () => {
      const tracks = pc.getReceivers().map((r) => r.track).filter((t) => t && t.kind === 'audio');
      if (tracks.length) this.audio.srcObject = new MediaStream(tracks);
    };
    pc.addEventListener('track', attach);
    attach();
  }

  // --- what the user does -----------------------------------------------------------------

  call(text) {
    const target = normaliseTarget(text);
    if (!target) throw new RangeError('not a number');
    const domain = this.credentials.sip_uri.split('@')[1];
    this.ua.call(`sip:${target}@${domain}`, {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    });
  }

  answer() {
    this.session?.answer({
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] },
    });
  }

  decline() {
    this.session?.terminate({ status_code: 603, reason_phrase: 'Decline' });
  }

  hangup() {
    if (this.session && !this.session.isEnded()) this.session.terminate();
  }

  hold() {
    this.session?.hold();
  }

  resume() {
    this.session?.unhold();
  }

  mute() {
    this.session?.mute({ audio: true });
  }

  unmute() {
    this.session?.unmute({ audio: true });
  }

  // RFC 4733 telephone events in the media (the relay passes them on), not SIP INFO.
  dtmf(key) {
    if (!DTMF_KEYS.includes(key)) return;
    this.session?.sendDTMF(key, { transportType: 'RFC2833', duration: 160, interToneGap: 70 });
  }

  // Blind transfer: REFER the far end to `text`; once it reports the new call up (NOTIFY 2xx),
  // this leg ends.
  transfer(text) {
    const target = normaliseTarget(text);
    if (!target || !this.session) throw new RangeError('not a number');
    const session = this.session;
    const domain = this.credentials.sip_uri.split('@')[1];
    this._setCall({ transfer: 'requested' });
    session.refer(`sip:${target}@${domain}`, {
      eventHandlers: {
        requestFailed: (e) => {
          this._setCall({ transfer: 'failed' });
          const r = e.response;
          if (r) this._set({ error: { status: r.status_code, reason: r.reason_phrase } });
        },
        accepted: () => {
          this._setCall({ transfer: 'done' });
          if (!session.isEnded()) session.terminate();
        },
        failed: () => this._setCall({ transfer: 'failed' }),
      },
    });
  }
}
