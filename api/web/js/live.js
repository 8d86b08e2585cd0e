// Everything that keeps the console live, in one place: following a submitted command to its outcome,
// and the feed of prices (and command statuses) from the server.
//
// A command is followed with the long poll `GET /v1/commands/{id}?wait=25`. A server that ignores
// `wait` answers at once; then the next question waits for the rest of a second, a pause the real long
// poll (which answers only when the command is decided, or after 25 s) never reaches.
//
// Prices come from `GET /v1/stream` (an EventSource opened with a single-use ticket from
// `POST /v1/auth/stream-ticket`), whose `command` events also flip followed commands early. A server
// without the stream answers the ticket with 404: the feed then refreshes `GET /v1/assets` every few
// seconds instead.
import { ApiError, get, request } from "./api.js";

const TERMINAL = new Set(["settled", "rejected"]);
const LONG_POLL_S = 25;
const MIN_ROUND_MS = 1000;
const RETRY_MS = 2000;
const PRICE_REFRESH_MS = 5000;
const RECONNECT_MS = 3000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const isTerminal = (status) => TERMINAL.has(status);

/** Calls `onStatus` with every status seen until the command is settled or rejected. */
export async function followCommand(commandId, onStatus) {
  const path = `/v1/commands/${encodeURIComponent(commandId)}?wait=${LONG_POLL_S}`;
  for (;;) {
    const started = performance.now();
    let status;
    try {
      status = await get(path);
    } catch (error) {
      // A 4xx will not get better by asking again; a dropped connection or a 5xx may.
      if (error instanceof ApiError && error.status < 500) throw error;
      await sleep(RETRY_MS);
      continue;
    }
    onStatus(status);
    if (isTerminal(status.status)) return status;
    await sleep(Math.max(0, MIN_ROUND_MS - (performance.now() - started)));
  }
}

const priceListeners = new Set();
const commandListeners = new Set();
let stopFeed = null;

/** `listener(ticks)` gets arrays of `{asset, price, at}`; returns the unsubscribe function. */
export function onPrices(listener) {
  return subscribe(priceListeners, listener);
}

/** `listener(status)` gets command statuses pushed by the stream (none while polling). */
export function onCommandEvents(listener) {
  return subscribe(commandListeners, listener);
}

/** The feed's current mode, for the page footer: "stream", "polling" or "off". */
export let feedMode = "off";

function subscribe(set, listener) {
  set.add(listener);
  if (!stopFeed) stopFeed = startFeed();
  return () => {
    set.delete(listener);
    if (!priceListeners.size && !commandListeners.size && stopFeed) {
      stopFeed();
      stopFeed = null;
    }
  };
}

function emit(set, value) {
  for (const listener of set) listener(value);
}

function startFeed() {
  let stopped = false;
  let source = null;
  let timer = null;

  async function refreshPrices() {
    try {
      const { items } = await get("/v1/assets?limit=500");
      const ticks = items.filter((a) => a.price !== null);
      emit(priceListeners, ticks.map((a) => ({ asset: a.symbol, price: a.price, at: a.updated_at })));
    } catch {
      // The next round tries again.
    }
  }

  async function poll() {
    feedMode = "polling";
    await refreshPrices();
    if (!stopped) timer = setTimeout(poll, PRICE_REFRESH_MS);
  }

  async function connect() {
    let ticket;
    try {
      ticket = (await request("POST", "/v1/auth/stream-ticket")).ticket;
    } catch (error) {
      if (stopped) return;
      if (error instanceof ApiError && error.status === 404) return poll(); // no stream here
      await refreshPrices();
      if (!stopped) timer = setTimeout(connect, RECONNECT_MS);
      return;
    }
    if (stopped) return;
    feedMode = "stream";
    source = new EventSource(`/v1/stream?ticket=${encodeURIComponent(ticket)}`);
    source.addEventListener("price", (e) => emit(priceListeners, [JSON.parse(e.data)]));
    source.addEventListener("command", (e) => emit(commandListeners, JSON.parse(e.data)));
    // A ticket is single-use, so EventSource's own reconnection cannot work: fetch a new one.
    source.onerror = () => {
      source.close();
      source = null;
      if (!stopped) timer = setTimeout(connect, RECONNECT_MS);
    };
    refreshPrices(); // the stream carries changes only: start from the current prices
  }

  connect();
  return () => {
    stopped = true;
    feedMode = "off";
    clearTimeout(timer);
    if (source) source.close();
  };
}
