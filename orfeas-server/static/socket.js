// A WebSocket to /ws that reconnects by itself with exponential backoff (and jitter, so many
// tabs do not hammer a restarted server at the same instant). The server sends a `snapshot`
// first on every connection, so the page re-renders from it after each reconnect.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export class ReconnectingSocket {
  /**
   * @param {string} url
   * @param {{onEvent(name: string, data: object): void, onState(state: 'connecting'|'open'|'closed', retryInMs?: number): void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.attempt = 0;
    this.timer = null;
    this.ws = null;
    window.addEventListener('online', () => this.reconnectNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.reconnectNow();
    });
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    this.handlers.onState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.attempt = 0;
      this.handlers.onState('open');
    });
    ws.addEventListener('message', (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        console.warn('orfeas: ignoring a WebSocket frame that is not JSON');
        return;
      }
      if (frame && typeof frame.event === 'string') this.handlers.onEvent(frame.event, frame.data ?? {});
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.scheduleReconnect();
    });
    // An error is always followed by close, which schedules the retry.
    ws.addEventListener('error', () => {});
  }

  /** Retry now when the reason to wait went away (network back, tab visible again). */
  reconnectNow() {
    if (this.ws || !this.timer) return;
    this.attempt = 0;
    this.connect();
  }

  scheduleReconnect() {
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.handlers.onState('closed', delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
