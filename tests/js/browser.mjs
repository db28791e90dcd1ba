// A stand-in for the browser around flask_cf_access/static/cf-access.js: an app
// whose session the test ends and renews, a window that opens popups, timers
// the test runs by hand and a clock it moves. Used by cf-access.test.mjs.

import { copyFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const MODULE = new URL("../../flask_cf_access/static/cf-access.js", import.meta.url);

/** The module under test, copied to an ".mjs" file: an ES module whatever Node's version
 * makes of a ".js" file outside a package. */
export async function loadModule() {
  const copy = join(await mkdtemp(join(tmpdir(), "cf-access-js-")), "cf-access.mjs");
  await copyFile(MODULE, copy);
  return import(pathToFileURL(copy).href);
}

/** `promise`, marked as handled: it may reject before the test asserts on it. */
export function later(promise) {
  promise.catch(() => {});
  return promise;
}

export const ORIGIN = "https://app.example";
export const SESSION_URL = "/auth/session";

/** Let every pending promise callback run. */
export async function settle() {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** Whether `promise` is still pending once everything else has run. */
export async function isPending(promise) {
  const pending = Symbol("pending");
  await settle();
  return (await Promise.race([promise.catch((error) => error), Promise.resolve(pending)])) === pending;
}

/** An opaque redirect, as fetch gives one for `redirect: "manual"` (Node cannot make one). */
export function opaqueRedirect() {
  return { type: "opaqueredirect", status: 0, ok: false };
}

/**
 * The fake browser and app. `app(request, body)` answers the app's own URLs
 * (default: 200 "ok" when signed in, else 401); the session view answers 200
 * when `signedIn`, else 401.
 */
export function makeBrowser({ app, href = `${ORIGIN}/notes?tab=2#new`, storage = new Map() } = {}) {
  const browser = {
    signedIn: true,
    now: 1_000_000,
    requests: [],
    popups: [],
    blockPopups: false,
    timers: [],
    listeners: new Set(),
    channels: [],
    assigned: [],
  };
  const answer =
    app ?? ((request) => new Response("ok", { status: browser.signedIn ? 200 : 401 }));
  const url = new URL(href);
  browser.window = {
    location: {
      href,
      origin: url.origin,
      pathname: url.pathname,
      search: url.search,
      hash: url.hash,
      assign: (to) => browser.assigned.push(to),
    },
    open(to, name, features) {
      if (browser.blockPopups) return null;
      const popup = { url: to, name, features, closed: false, close() { this.closed = true; } };
      browser.popups.push(popup);
      return popup;
    },
    addEventListener: (type, listener) => type === "message" && browser.listeners.add(listener),
    removeEventListener: (type, listener) => browser.listeners.delete(listener),
  };
  browser.storage = {
    getItem: (key) => (storage.has(key) ? storage.get(key) : null),
    setItem: (key, value) => storage.set(key, String(value)),
    removeItem: (key) => storage.delete(key),
  };
  browser.fetch = async (request) => {
    const body = request.body ? await request.text() : null;
    const seen = {
      method: request.method,
      url: request.url,
      path: new URL(request.url).pathname,
      headers: Object.fromEntries(request.headers),
      credentials: request.credentials,
      redirect: request.redirect,
      body,
    };
    browser.requests.push(seen);
    if (seen.path === SESSION_URL) {
      return browser.signedIn
        ? Response.json({ expires_in: 60, email: "ada@example.com" })
        : new Response('{"error": "unauthorized"}', { status: 401 });
    }
    return answer(seen, browser);
  };
  browser.BroadcastChannel = class {
    constructor(name) {
      this.name = name;
      this.onmessage = null;
      this.closed = false;
      browser.channels.push(this);
    }
    close() {
      this.closed = true;
    }
  };
  /** Run the timers due now (each once), as the event loop would. */
  browser.runTimers = async () => {
    const due = browser.timers.splice(0);
    for (const timer of due) timer.fn();
    await settle();
  };
  /** A message event on the window, from `origin`. */
  browser.post = async (data, origin = ORIGIN) => {
    for (const listener of [...browser.listeners]) listener({ origin, data });
    await settle();
  };
  /** The requests the app received, without the session view's. */
  browser.appRequests = () => browser.requests.filter((seen) => seen.path !== SESSION_URL);
  browser.options = (extra = {}) => ({
    sessionUrl: SESSION_URL,
    fetch: browser.fetch,
    window: browser.window,
    storage: browser.storage,
    now: () => browser.now,
    setTimeout: (fn, ms) => {
      const timer = { fn, ms };
      browser.timers.push(timer);
      return timer;
    },
    clearTimeout: (timer) => {
      const index = browser.timers.indexOf(timer);
      if (index >= 0) browser.timers.splice(index, 1);
    },
    BroadcastChannel: browser.BroadcastChannel,
    ...extra,
  });
  return browser;
}
