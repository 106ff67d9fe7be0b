// DebateSocket: the framework-free client of ws://HOST/ws/debate/<id>/ (DESIGN §3).
//
// It connects with the access token, dispatches every action as a DOM event, and heals itself:
// exponential backoff with jitter, resume with lastSeq (events with seq <= lastSeq are dropped, so
// no text is repeated or lost), an access-token refresh before connecting when the token is near
// expiry and once after a 4001, and a heartbeat watchdog that reconnects when nothing (not even
// DEBATE/PING) has arrived for staleFactor x the ping interval. It gives up (state "failed", no
// reconnect until retry()) on 4003, 4004, 4008 (an operator's disconnect) and 1008 (too many bad
// frames), and on a 4001 that one token refresh did not mend.
//
// Events (CustomEvent, payload in `detail`): "state" {state, previous, code, reason},
// "action" (every action applied or received), "connected", "token", "argument", "turn", "status",
// "paused", "resumed", "question", "concluding" (moderator controls), "usage", "error", "ping",
// "gap".

import { ActionType, CloseCode, FINAL_STATUSES } from "./protocol.js";

// The constants are generated from streaming/protocol.py; re-exported for existing importers.
export { ActionType, CloseCode };

/** Connection states shown to the user. */
export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  ENDED: "ended",
  FAILED: "failed",
  CLOSED: "closed",
});

export const TERMINAL_STATUSES = new Set(FINAL_STATUSES);

// Closes that reconnecting cannot mend, or must not: the debate or this origin is refused, an
// operator removed this viewer on purpose, or this client keeps sending frames the server refuses.
const GIVE_UP_CODES = new Set([
  CloseCode.NOT_FOUND,
  CloseCode.ORIGIN_NOT_ALLOWED,
  CloseCode.OPERATOR_DISCONNECT,
  CloseCode.POLICY_VIOLATION,
]);

const EVENT_FOR_TYPE = {
  [ActionType.TOKEN_RECEIVED]: "token",
  [ActionType.ARGUMENT_COMPLETE]: "argument",
  [ActionType.TURN_CHANGE]: "turn",
  [ActionType.STATUS_UPDATE]: "status",
  [ActionType.RECOVERING]: "recovering",
  [ActionType.PAUSED]: "paused",
  [ActionType.RESUMED]: "resumed",
  [ActionType.QUESTION]: "question",
  [ActionType.USAGE]: "usage",
  [ActionType.CONCLUDING]: "concluding",
};

/** Milliseconds until a JWT expires; -Infinity when it cannot be read. */
export function jwtMsUntilExpiry(token, now = Date.now()) {
  try {
    const part = token.split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const { exp } = JSON.parse(atob(b64));
    return typeof exp === "number" ? exp * 1000 - now : -Infinity;
  } catch {
    return -Infinity;
  }
}

/** Full-ish jitter: a delay in [base/2, base) where base doubles per attempt up to maxMs. */
export function backoffDelay(attempt, { minMs = 500, maxMs = 15_000, random = Math.random } = {}) {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return Math.round(base / 2 + (random() * base) / 2);
}

export class DebateSocket extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.debateId
   * @param {() => (string|null)} options.getAccessToken  the current access token
   * @param {() => Promise<string|null>} options.refreshAccessToken  a new access token, or null
   * @param {() => boolean} [options.hasCredentials]  false once sign-in is gone (stop retrying)
   * @param {string} [options.baseUrl]  ws(s)://host; defaults to this page's host
   * @param {number} [options.pingIntervalMs]  the server's heartbeat interval (30 s by default)
   * @param {number} [options.staleFactor]  silence of staleFactor x pingIntervalMs means a dead link
   * @param {number} [options.lastSeq]  resume after this seq
   */
  constructor({
    debateId,
    getAccessToken,
    refreshAccessToken,
    hasCredentials = () => true,
    baseUrl = null,
    pingIntervalMs = 30_000,
    staleFactor = 2.5,
    minDelayMs = 500,
    maxDelayMs = 15_000,
    rateLimitedDelayMs = 10_000,
    refreshSkewMs = 30_000,
    endLingerMs = 1_000,
    lastSeq = 0,
    WebSocketImpl = globalThis.WebSocket,
    random = Math.random,
  }) {
    super();
    this.debateId = debateId;
    this.getAccessToken = getAccessToken;
    this.refreshAccessToken = refreshAccessToken;
    this.hasCredentials = hasCredentials;
    this.baseUrl = baseUrl || `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}`;
    this.pingIntervalMs = pingIntervalMs;
    this.staleFactor = staleFactor;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.rateLimitedDelayMs = rateLimitedDelayMs;
    this.refreshSkewMs = refreshSkewMs;
    this.endLingerMs = endLingerMs;
    this.WebSocketImpl = WebSocketImpl;
    this.random = random;

    this.lastSeq = lastSeq; // the highest seq applied
    this.serverLastSeq = null; // lastSeq announced by the latest DEBATE/CONNECTED
    this.status = null; // the debate's status as last reported
    this.state = State.IDLE;
    this.attempt = 0; // reconnect attempts since the last DEBATE/CONNECTED
    this.connections = 0; // sockets opened so far (1 + reconnects)
    this.lastClose = null; // {code, reason, wasClean} of the last socket

    this._ws = null;
    this._gen = 0; // bumps on every new socket: events of older sockets are ignored
    this._retryTimer = null;
    this._watchdog = null;
    this._endTimer = null;
    this._refreshedAfter4001 = false;
    this._gapResyncAt = null;
    this._onOnline = () => {
      if (this.state === State.RECONNECTING && this._retryTimer) this.reconnectNow();
    };
  }

  /** Open the socket; the client keeps it open until stop() or the debate ends. */
  start() {
    if (this.state !== State.IDLE && this.state !== State.CLOSED) return this;
    globalThis.addEventListener?.("online", this._onOnline);
    this.state = State.IDLE;
    this._connect();
    return this;
  }

  /** Close for good (e.g. the page goes away). */
  stop() {
    this._teardown(1000, "client stop");
    globalThis.removeEventListener?.("online", this._onOnline);
    this._setState(State.CLOSED);
  }

  /** Connect again after a failure, at the user's request; resumes after lastSeq. */
  retry() {
    if (this.state !== State.FAILED) return this;
    this.attempt = 0;
    this._refreshedAfter4001 = false;
    this._setState(State.RECONNECTING);
    this._connect();
    return this;
  }

  /** Skip the remaining backoff and reconnect now. */
  reconnectNow() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._connect();
  }

  /** Add a listener for `type` with the event's detail; returns this for chaining. */
  on(type, handler) {
    this.addEventListener(type, (event) => handler(event.detail, event));
    return this;
  }

  get isFinished() {
    return [State.ENDED, State.FAILED, State.CLOSED].includes(this.state);
  }

  url(token) {
    const params = new URLSearchParams({ token });
    if (this.lastSeq > 0) params.set("lastSeq", String(this.lastSeq));
    return `${this.baseUrl}/ws/debate/${encodeURIComponent(this.debateId)}/?${params}`;
  }

  // --- internals --------------------------------------------------------------------------

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra = {}) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this._emit("state", { state, previous, ...extra });
  }

  async _token() {
    let token = this.getAccessToken();
    if (!token || jwtMsUntilExpiry(token) < this.refreshSkewMs) {
      token = (await this.refreshAccessToken()) || null;
    }
    return token;
  }

  async _connect() {
    if (this.isFinished) return;
    const gen = ++this._gen;
    this._setState(this.connections === 0 ? State.CONNECTING : State.RECONNECTING);
    const token = await this._token();
    if (gen !== this._gen || this.isFinished) return;
    if (!token) {
      if (!this.hasCredentials()) {
        this._fail(CloseCode.UNAUTHORIZED, "signed out");
      } else {
        this._scheduleReconnect(); // the refresh endpoint is unreachable: try again later
      }
      return;
    }
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url(token));
    } catch (error) {
      this._fail(0, String(error));
      return;
    }
    this._ws = ws;
    this.connections += 1;
    ws.onopen = () => {
      if (gen === this._gen) this._armWatchdog();
    };
    ws.onmessage = (event) => {
      if (gen === this._gen) this._onMessage(event.data);
    };
    ws.onerror = () => {}; // a close event always follows
    ws.onclose = (event) => {
      if (gen === this._gen) this._onClose(event);
    };
    this._armWatchdog(); // a handshake that never completes is a dead link too
  }

  _armWatchdog() {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => {
      this._emit("stale", { lastSeq: this.lastSeq });
      this._dropAndReconnect(4000, "heartbeat timeout");
    }, this.pingIntervalMs * this.staleFactor);
  }

  /** Abandon the current socket without waiting for its close handshake, then reconnect. */
  _dropAndReconnect(code, reason, delayMs) {
    this._teardown(code, reason);
    this.lastClose = { code, reason, wasClean: false };
    this._setState(State.RECONNECTING, { code, reason });
    this._scheduleReconnect(delayMs);
  }

  _teardown(code = 1000, reason = "") {
    this._gen += 1;
    clearTimeout(this._watchdog);
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState <= 1) {
      try {
        ws.close(code, reason);
      } catch {
        // closing an already-broken socket may throw in some browsers
      }
    }
  }

  _fail(code, reason) {
    this._teardown(1000, reason);
    clearTimeout(this._endTimer);
    this.lastClose = { code, reason, wasClean: true };
    this._setState(State.FAILED, { code, reason });
  }

  _scheduleReconnect(delayMs) {
    clearTimeout(this._retryTimer);
    const delay =
      delayMs ??
      backoffDelay(this.attempt, { minMs: this.minDelayMs, maxMs: this.maxDelayMs, random: this.random });
    this.attempt += 1;
    this._emit("retry", { attempt: this.attempt, delayMs: delay });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._connect();
    }, delay);
  }

  async _onClose(event) {
    clearTimeout(this._watchdog);
    this._ws = null;
    const { code, reason, wasClean } = event;
    this.lastClose = { code, reason, wasClean };
    if (this.isFinished) return;
    if (this._endTimer) {
      // The server closed after the final status: the debate is over, nothing to resume.
      clearTimeout(this._endTimer);
      this._setState(State.ENDED, { code, reason });
      return;
    }
    if (GIVE_UP_CODES.has(code)) {
      this._fail(code, reason);
      return;
    }
    if (code === CloseCode.UNAUTHORIZED) {
      if (this._refreshedAfter4001) {
        this._fail(code, reason || "unauthorized");
        return;
      }
      this._refreshedAfter4001 = true;
      this._setState(State.RECONNECTING, { code, reason });
      const gen = this._gen;
      const token = await this.refreshAccessToken();
      if (gen !== this._gen || this.isFinished) return;
      if (token) {
        this._connect();
      } else if (!this.hasCredentials()) {
        this._fail(code, "session expired");
      } else {
        this._scheduleReconnect();
      }
      return;
    }
    this._setState(State.RECONNECTING, { code, reason });
    if (code === CloseCode.RATE_LIMITED) {
      this._scheduleReconnect(
        Math.max(this.rateLimitedDelayMs, backoffDelay(this.attempt, { minMs: this.minDelayMs, maxMs: 60_000, random: this.random })),
      );
    } else {
      this._scheduleReconnect();
    }
  }

  _onMessage(raw) {
    this._armWatchdog();
    let action;
    try {
      action = JSON.parse(raw);
    } catch {
      return;
    }
    if (!action || typeof action.type !== "string") return;
    const payload = action.payload || {};
    switch (action.type) {
      case ActionType.PING:
        this._emit("ping", payload);
        return;
      case ActionType.CONNECTED:
        this.attempt = 0;
        this._refreshedAfter4001 = false;
        this.serverLastSeq = typeof payload.lastSeq === "number" ? payload.lastSeq : null;
        if (payload.reset === true) {
          // The server could not honour our lastSeq and replays the whole debate from seq 1
          // with its own numbering: start over, and let the page clear what it shows.
          this.lastSeq = 0;
          this._gapResyncAt = null;
          this._emit("reset", payload);
        }
        if (payload.status) this.status = payload.status;
        this._setState(State.LIVE);
        this._emit("connected", payload);
        this._emit("action", action);
        this._maybeEnd();
        return;
      case ActionType.ERROR:
        this._emit("error", payload);
        this._emit("action", action);
        return;
      default:
        this._applyEvent(action, payload);
    }
  }

  _applyEvent(action, payload) {
    const seq = payload.seq;
    if (typeof seq === "number") {
      if (seq <= this.lastSeq) return; // already applied (replay overlap): never repeat text
      if (seq > this.lastSeq + 1 && this._gapResyncAt !== this.lastSeq) {
        // Events went missing (seqs have no gaps): resume from what we have. Once per position,
        // so a server that does skip numbers cannot trap us in a loop.
        this._gapResyncAt = this.lastSeq;
        this._emit("gap", { expected: this.lastSeq + 1, got: seq });
        this._dropAndReconnect(4000, "sequence gap", 0);
        return;
      }
      this.lastSeq = seq;
    }
    if (action.type === ActionType.STATUS_UPDATE && payload.status) this.status = payload.status;
    const name = EVENT_FOR_TYPE[action.type];
    if (name) this._emit(name, payload);
    this._emit("action", action);
    this._maybeEnd();
  }

  /** After the debate's final status, linger briefly for trailing events, then close. */
  _maybeEnd() {
    if (!TERMINAL_STATUSES.has(this.status) || this._endTimer) return;
    if (this.serverLastSeq !== null && this.lastSeq < this.serverLastSeq) return; // still replaying
    this._endTimer = setTimeout(() => {
      this._teardown(1000, "debate finished");
      this._setState(State.ENDED);
    }, this.endLingerMs);
  }
}
