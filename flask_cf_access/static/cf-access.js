// cf-access.js: keep a page working when its Cloudflare Access session ends.
//
// Part of flask-cf-access (MIT licence). A plain ES module with no dependencies
// and no build step: flask-cf-access serves it at <session url>/cf-access.js
// (session_blueprint()), or give this file to your bundler.
//
//   import { accessFetch, SessionEndedError } from "/auth/session/cf-access.js";
//   const response = await accessFetch("/api/notes", { method: "POST", body });
//
// accessFetch sends X-Requested-With (so Access and the app answer 401 instead
// of redirecting to the login page) and same-origin credentials, and does not
// follow redirects. A 401, or a redirect to the login page, means the session
// is over: it opens sign-in in a popup, waits until the session view answers
// again, and sends the request once more. It never loops: a request that fails
// again after signing in, a blocked or closed popup, or a sign-in that takes
// too long rejects with a SessionEndedError, which the app shows; requests
// refused after that reject at once, with no popup of their own, until signIn()
// is called (from a click) or a request gets through.

/** What the signed-in page posts to its opener and on the broadcast channel. */
export const SIGNED_IN_MESSAGE = "cf-access:signed-in";
/** The BroadcastChannel the signed-in page also posts on. */
export const CHANNEL_NAME = "cf-access";
/** The sessionStorage key marking a navigation to sign in (against loops). */
export const NAVIGATION_KEY = "cf-access:navigated-to-sign-in";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

const MESSAGES = {
  "signed-out": "Your session has ended: sign in again.",
  "still-signed-out": "Still signed out after signing in again.",
  "popup-blocked": "The sign-in window was blocked: sign in again.",
  "popup-closed": "The sign-in window was closed before signing in.",
  timeout: "Signing in took too long.",
};

/**
 * The session is over and could not be renewed here. `reason` says why:
 * "signed-out" (an earlier sign-in failed: call signIn() from a click),
 * "still-signed-out" (signed in, yet refused again), "popup-blocked",
 * "popup-closed" or "timeout". `response` is the last refused response, if any.
 */
export class SessionEndedError extends Error {
  constructor(reason, response = null) {
    super(MESSAGES[reason] ?? "Your session has ended.");
    this.name = "SessionEndedError";
    this.reason = reason;
    this.response = response;
  }
}

/** Whether `method` changes nothing (such a request may always be sent again). */
export function isSafeMethod(method) {
  return SAFE_METHODS.has(String(method).toUpperCase());
}

/** Whether `response` says the session is over: a 401, or a redirect not followed. */
export function isSignedOutAnswer(response) {
  return response.status === 401 || response.type === "opaqueredirect";
}

/** The session view's URL, from where this module was served (<session url>/cf-access.js). */
export function sessionUrlFrom(moduleUrl) {
  return new URL("./", moduleUrl).pathname.replace(/\/$/, "");
}

/**
 * A client bound to the app's session view. Options:
 * - sessionUrl: the session view's path (required when bundled);
 * - signIn: "popup" (default) or "navigate", for requests made without options;
 * - pollInterval: milliseconds between two looks at the session view while
 *   signing in (default 2000); timeout: the most a sign-in may take (120000);
 * - closedGrace: milliseconds the wait goes on once the popup looks closed
 *   (default 0). An identity provider whose pages send Cross-Origin-Opener-Policy
 *   cuts the popup from this page, which then sees it as closed while the
 *   person is still signing in: give them time (60000) if yours does;
 * - loopWindow: milliseconds within which a second navigation to sign in is a
 *   loop and rejects instead (default 60000);
 * - fetch, window, storage, now, setTimeout, clearTimeout, BroadcastChannel:
 *   what the browser provides, replaceable in tests.
 */
export function createAccessClient(options = {}) {
  const env = {
    fetch: options.fetch ?? ((...args) => globalThis.fetch(...args)),
    window: options.window ?? globalThis.window,
    storage: "storage" in options ? options.storage : globalThis.sessionStorage,
    now: options.now ?? (() => Date.now()),
    setTimeout: options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms)),
    clearTimeout: options.clearTimeout ?? ((id) => globalThis.clearTimeout(id)),
    BroadcastChannel:
      "BroadcastChannel" in options ? options.BroadcastChannel : globalThis.BroadcastChannel,
  };
  if (!options.sessionUrl) {
    throw new TypeError("createAccessClient needs the session view's URL: { sessionUrl }");
  }
  const sessionUrl = options.sessionUrl.replace(/\/$/, "");
  const signedInUrl = `${sessionUrl}/signed-in`;
  // The session view may belong to another Access application (CORS): its
  // cookie then goes with credentials "include", and its popup's message
  // comes from its origin.
  const sessionOrigin = new URL(sessionUrl, env.window.location.href).origin;
  const sessionCredentials =
    sessionOrigin === env.window.location.origin ? "same-origin" : "include";
  const defaultMode = options.signIn ?? "popup";
  const pollInterval = options.pollInterval ?? 2000;
  const timeout = options.timeout ?? 120000;
  const loopWindow = options.loopWindow ?? 60000;
  const closedGrace = options.closedGrace ?? 0;
  // One sign-in at a time, shared by every request refused meanwhile.
  let signingIn = null;
  // Set when a sign-in failed: later requests reject at once, never a popup each.
  let gaveUp = false;

  function absolute(url) {
    return new URL(url, env.window.location.href).href;
  }

  function prepare(input, init = {}) {
    const fromRequest = typeof Request !== "undefined" && input instanceof Request;
    const headers = new Headers(init.headers ?? (fromRequest ? input.headers : undefined));
    if (!headers.has("X-Requested-With")) headers.set("X-Requested-With", "XMLHttpRequest");
    return new Request(fromRequest ? input : absolute(String(input)), {
      ...init,
      headers,
      credentials: init.credentials ?? (fromRequest ? input.credentials : "same-origin"),
      redirect: "manual",
    });
  }

  /** The session view's answer to this browser's session. */
  function askSession() {
    return env.fetch(
      new Request(absolute(sessionUrl), {
        headers: { "X-Requested-With": "XMLHttpRequest", Accept: "application/json" },
        credentials: sessionCredentials,
        redirect: "manual",
        cache: "no-store",
      }),
    );
  }

  /** Whether the session view answers: the browser holds a valid session. */
  async function signedIn() {
    try {
      return (await askSession()).ok;
    } catch {
      return false;
    }
  }

  /** Whether `response` ends the session; a redirect only if the session view agrees. */
  async function ended(response) {
    if (response.status === 401) return true;
    if (response.type !== "opaqueredirect") return false;
    // A redirect not followed: the login page, or one of the app's own.
    return !(await signedIn());
  }

  /** A request got through: the session works, no loop is under way. */
  function succeeded() {
    gaveUp = false;
    try {
      env.storage?.removeItem(NAVIGATION_KEY);
    } catch {
      // Storage denied (a sandboxed frame): nothing was written either.
    }
  }

  function recentNavigation() {
    try {
      const at = Number(env.storage?.getItem(NAVIGATION_KEY));
      return at > 0 && env.now() - at < loopWindow;
    } catch {
      return false;
    }
  }

  /**
   * Leave the page to sign in, and come back to the same place (path, query
   * and fragment). Throws SessionEndedError("still-signed-out") instead when
   * this page already did so within loopWindow without a request succeeding
   * since: that would be a loop.
   */
  function navigateToSignIn() {
    if (recentNavigation()) throw new SessionEndedError("still-signed-out");
    try {
      env.storage?.setItem(NAVIGATION_KEY, String(env.now()));
    } catch {
      // Without storage there is no loop guard across pages: the server's still is.
    }
    const here = env.window.location;
    const next = `${here.pathname}${here.search}${here.hash}`;
    env.window.location.assign(`${signedInUrl}?next=${encodeURIComponent(next)}`);
  }

  function waitForSignIn(popup) {
    return new Promise((resolve, reject) => {
      const deadline = env.now() + timeout;
      let settled = false;
      let timer = null;
      let checking = false;
      const channel = env.BroadcastChannel ? new env.BroadcastChannel(CHANNEL_NAME) : null;
      let closedSince = null;

      const finish = (error) => {
        if (settled) return;
        settled = true;
        if (timer !== null) env.clearTimeout(timer);
        env.window.removeEventListener("message", onMessage);
        channel?.close();
        try {
          if (!popup.closed) popup.close();
        } catch {
          // A popup on another origin may refuse: it closes itself anyway.
        }
        if (error) reject(error);
        else resolve();
      };

      const check = async () => {
        if (settled || checking) return;
        checking = true;
        const closed = Boolean(popup.closed);
        const ok = await signedIn();
        checking = false;
        if (ok) {
          finish();
          return;
        }
        if (closed) {
          closedSince ??= env.now();
          if (env.now() - closedSince >= closedGrace) {
            finish(new SessionEndedError("popup-closed"));
            return;
          }
        }
        if (env.now() >= deadline) finish(new SessionEndedError("timeout"));
      };

      const tick = async () => {
        timer = null;
        await check();
        if (!settled) timer = env.setTimeout(tick, pollInterval);
      };

      // From the popup (window.opener), or from any page of this origin (the
      // channel: a login page with Cross-Origin-Opener-Policy cuts the opener).
      function onMessage(event) {
        if (event.origin === sessionOrigin) onSignal(event);
      }
      function onSignal(event) {
        if (event.data?.type === SIGNED_IN_MESSAGE) check();
      }

      env.window.addEventListener("message", onMessage);
      if (channel) channel.onmessage = onSignal;
      timer = env.setTimeout(tick, pollInterval);
    });
  }

  /**
   * Sign in again in a popup; resolves once the session view answers. Call it
   * from a click (a "Sign in again" button) after a SessionEndedError: browsers
   * let pages open popups on a click. Concurrent calls share one popup.
   */
  function signIn() {
    if (!signingIn) {
      signingIn = (async () => {
        const popup = env.window.open(signedInUrl, "cf-access-sign-in", "popup,width=520,height=640");
        if (!popup) throw new SessionEndedError("popup-blocked");
        await waitForSignIn(popup);
      })().then(
        () => {
          gaveUp = false;
          signingIn = null;
        },
        (error) => {
          gaveUp = true;
          signingIn = null;
          throw error;
        },
      );
    }
    return signingIn;
  }

  /**
   * fetch, through Access: see the top of this module. `options.signIn` is
   * "popup" (sign in, retry once) or "navigate" (for a page's first load:
   * leave to sign in and come back; the promise then never settles).
   */
  async function accessFetch(input, init = {}, callOptions = {}) {
    const mode = callOptions.signIn ?? defaultMode;
    const request = prepare(input, init);
    const response = await env.fetch(request.clone());
    if (!(await ended(response))) {
      succeeded();
      return response;
    }
    if (mode === "navigate") {
      navigateToSignIn();
      return new Promise(() => {});
    }
    if (gaveUp) {
      // A sign-in failed and nobody signed in since: no popup for each request.
      throw new SessionEndedError("signed-out", response);
    }
    await signIn();
    const retried = await env.fetch(request);
    if (await ended(retried)) {
      gaveUp = true;
      throw new SessionEndedError("still-signed-out", retried);
    }
    succeeded();
    return retried;
  }

  /** The session view's answer (expires_in, email, ...), or null when signed out. */
  async function session() {
    const response = await askSession();
    if (isSignedOutAnswer(response)) return null;
    if (!response.ok) throw new Error(`The session view answered ${response.status}.`);
    return response.json();
  }

  return { fetch: accessFetch, signIn, navigateToSignIn, session, sessionUrl };
}

let defaultClient = null;

/** Set the options of the functions below (sessionUrl, signIn, ...), e.g. when bundled. */
export function configure(options) {
  defaultClient = createAccessClient(options);
  return defaultClient;
}

function client() {
  if (!defaultClient) {
    defaultClient = createAccessClient({ sessionUrl: sessionUrlFrom(import.meta.url) });
  }
  return defaultClient;
}

/** fetch through Access with the default client (see createAccessClient). */
export function accessFetch(input, init, options) {
  return client().fetch(input, init, options);
}

/** Sign in again in a popup, with the default client. */
export function signIn() {
  return client().signIn();
}

/** Leave to sign in and come back here, with the default client. */
export function navigateToSignIn() {
  return client().navigateToSignIn();
}

/** The session view's answer, or null when signed out, with the default client. */
export function session() {
  return client().session();
}
