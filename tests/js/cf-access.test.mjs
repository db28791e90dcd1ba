// The browser module's logic (flask_cf_access/static/cf-access.js) under Node's
// own test runner: `node --test tests/js/` (tests/test_browser_module.py runs it).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ORIGIN,
  isPending,
  later,
  loadModule,
  makeBrowser,
  opaqueRedirect,
  settle,
} from "./browser.mjs";

const access = await loadModule();
const { SessionEndedError, createAccessClient } = access;

/** The app: counts the POSTs it stores, refuses them (401) while signed out. */
function notesApp() {
  const stored = [];
  const app = (seen, browser) => {
    if (!browser.signedIn) return new Response('{"error": "unauthorized"}', { status: 401 });
    if (seen.method === "POST") stored.push(seen.body);
    return Response.json(stored);
  };
  return { app, stored };
}

/** Sign in, in the popup the module opened, and tell the page as the signed-in page does. */
async function signInThroughPopup(browser) {
  assert.equal(browser.popups.length, 1, "one popup");
  browser.signedIn = true;
  await browser.post({ type: access.SIGNED_IN_MESSAGE });
}

test("a request that gets through is sent once, as XHR, same-origin, redirects not followed", async () => {
  const browser = makeBrowser();
  const client = createAccessClient(browser.options());
  const response = await client.fetch("/api/notes", { headers: { Accept: "application/json" } });
  assert.equal(response.status, 200);
  assert.deepEqual(
    browser.requests.map((seen) => [seen.method, seen.url]),
    [["GET", `${ORIGIN}/api/notes`]],
  );
  const [seen] = browser.requests;
  assert.equal(seen.headers["x-requested-with"], "XMLHttpRequest");
  assert.equal(seen.headers.accept, "application/json");
  assert.equal(seen.credentials, "same-origin");
  assert.equal(seen.redirect, "manual");
  assert.equal(browser.popups.length, 0);
});

test("the caller's own X-Requested-With and credentials are kept", async () => {
  const browser = makeBrowser();
  const client = createAccessClient(browser.options());
  await client.fetch(`${ORIGIN}/api`, {
    headers: { "X-Requested-With": "Fetch" },
    credentials: "include",
  });
  assert.equal(browser.requests[0].headers["x-requested-with"], "Fetch");
  assert.equal(browser.requests[0].credentials, "include");
});

test("an unsafe request refused with 401 signs in in a popup and is sent again once", async () => {
  const { app, stored } = notesApp();
  const browser = makeBrowser({ app });
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes", { method: "POST", body: "buy milk" }));
  await settle();
  assert.equal(browser.popups.length, 1);
  assert.equal(browser.popups[0].url, "/auth/session/signed-in");
  assert.ok(await isPending(pending), "waits for the sign-in");
  await signInThroughPopup(browser);
  const response = await pending;
  assert.equal(response.status, 200);
  assert.deepEqual(stored, ["buy milk"]);
  const posts = browser.appRequests().filter((seen) => seen.method === "POST");
  assert.deepEqual(
    posts.map((seen) => seen.body),
    ["buy milk", "buy milk"],
    "one refused, one stored: the same body both times",
  );
  assert.ok(browser.popups[0].closed, "the popup is closed");
  assert.deepEqual(browser.listeners.size, 0, "no listener left behind");
  assert.ok(browser.channels.every((channel) => channel.closed));
});

test("a safe request is sent again after sign-in too", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes"));
  await settle();
  await signInThroughPopup(browser);
  assert.equal((await pending).status, 200);
  assert.equal(browser.appRequests().length, 2);
});

test("refused again after signing in: a SessionEndedError, never a loop", async () => {
  const browser = makeBrowser({ app: () => new Response("", { status: 401 }) });
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes", { method: "POST", body: "x" }));
  await settle();
  await signInThroughPopup(browser);
  await assert.rejects(pending, (error) => {
    assert.ok(error instanceof SessionEndedError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "SessionEndedError");
    assert.equal(error.reason, "still-signed-out");
    assert.equal(error.response.status, 401);
    return true;
  });
  assert.equal(browser.appRequests().length, 2, "sent twice, no more");
  assert.equal(browser.popups.length, 1, "one popup, no more");

  // The next refused request rejects at once: no popup of its own.
  await assert.rejects(client.fetch("/api/notes"), { reason: "signed-out" });
  assert.equal(browser.popups.length, 1);
  assert.equal(browser.appRequests().length, 3);
});

test("after a failed sign-in, a request that gets through lifts the block", async () => {
  const { app } = notesApp();
  const browser = makeBrowser({ app });
  browser.signedIn = false;
  browser.blockPopups = true;
  const client = createAccessClient(browser.options());
  await assert.rejects(client.fetch("/api/notes"), { reason: "popup-blocked" });
  await assert.rejects(client.fetch("/api/notes"), { reason: "signed-out" });
  browser.signedIn = true; // signed in in another tab
  assert.equal((await client.fetch("/api/notes")).status, 200);
  browser.signedIn = false;
  browser.blockPopups = false;
  const pending = later(client.fetch("/api/notes"));
  await settle();
  await signInThroughPopup(browser);
  assert.equal((await pending).status, 200);
});

test("signIn() from a click renews the session after a failure", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  browser.blockPopups = true;
  const client = createAccessClient(browser.options());
  await assert.rejects(client.fetch("/api/notes"), { reason: "popup-blocked" });
  browser.blockPopups = false;
  const signingIn = client.signIn();
  await settle();
  await signInThroughPopup(browser);
  await signingIn;
  const pending = later(client.fetch("/api/notes"));
  assert.equal((await pending).status, 200);
});

test("a blocked popup rejects and the request is not sent again", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  browser.blockPopups = true;
  const client = createAccessClient(browser.options());
  await assert.rejects(client.fetch("/api/notes", { method: "POST", body: "x" }), {
    name: "SessionEndedError",
    reason: "popup-blocked",
  });
  assert.equal(browser.appRequests().length, 1);
});

test("a popup closed before signing in rejects; the request is not sent again", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes", { method: "DELETE" }));
  await settle();
  browser.popups[0].close();
  await browser.runTimers();
  await assert.rejects(pending, { reason: "popup-closed" });
  assert.equal(browser.appRequests().length, 1);
  assert.equal(browser.timers.length, 0, "no timer left behind");
});

test("with closedGrace, a popup cut from its opener may still finish signing in", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options({ closedGrace: 60_000 }));
  const pending = later(client.fetch("/api/notes", { method: "POST", body: "x" }));
  await settle();
  browser.popups[0].closed = true; // Cross-Origin-Opener-Policy on the login page
  await browser.runTimers();
  browser.now += 30_000;
  await browser.runTimers();
  assert.ok(await isPending(pending), "still waiting within the grace");
  browser.signedIn = true;
  browser.channels[0].onmessage({ data: { type: access.SIGNED_IN_MESSAGE } });
  assert.equal((await pending).status, 200);

  // Past the grace, still signed out: closed for good.
  browser.signedIn = false;
  const again = later(client.fetch("/api/notes"));
  await settle();
  browser.popups[1].closed = true;
  await browser.runTimers();
  browser.now += 60_000;
  await browser.runTimers();
  await assert.rejects(again, { reason: "popup-closed" });
});

test("a popup that signed in and closed itself before any message still counts", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes", { method: "POST", body: "x" }));
  await settle();
  browser.signedIn = true;
  browser.popups[0].close();
  await browser.runTimers();
  assert.equal((await pending).status, 200);
});

test("the session view is polled: a sign-in seen without any message", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options({ pollInterval: 500 }));
  const pending = later(client.fetch("/api/notes"));
  await settle();
  assert.deepEqual(
    browser.timers.map((timer) => timer.ms),
    [500],
  );
  await browser.runTimers(); // still signed out: polled once more later
  assert.ok(await isPending(pending));
  assert.equal(browser.timers.length, 1);
  browser.signedIn = true;
  await browser.runTimers();
  assert.equal((await pending).status, 200);
});

test("a sign-in that takes longer than the timeout rejects", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options({ timeout: 10_000 }));
  const pending = later(client.fetch("/api/notes"));
  await settle();
  browser.now += 9_999;
  await browser.runTimers();
  assert.ok(await isPending(pending));
  browser.now += 1;
  await browser.runTimers();
  await assert.rejects(pending, { reason: "timeout" });
  assert.ok(browser.popups[0].closed);
});

test("messages from another origin, or of another kind, are ignored", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes"));
  await settle();
  browser.signedIn = true;
  const before = browser.requests.length;
  await browser.post({ type: access.SIGNED_IN_MESSAGE }, "https://evil.example");
  await browser.post({ type: "something-else" });
  assert.equal(browser.requests.length, before, "the session view was not even asked");
  assert.ok(await isPending(pending));
  await browser.post({ type: access.SIGNED_IN_MESSAGE });
  assert.equal((await pending).status, 200);
});

test("the broadcast channel's message ends the wait (an opener cut by the login page)", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes"));
  await settle();
  const [channel] = browser.channels;
  assert.equal(channel.name, access.CHANNEL_NAME);
  browser.signedIn = true;
  channel.onmessage({ data: { type: access.SIGNED_IN_MESSAGE } });
  assert.equal((await pending).status, 200);
});

test("a session view on another Access application: its cookie, its popup's origin", async () => {
  const other = "https://api.example";
  const browser = makeBrowser({
    app: (seen, b) => new Response("", { status: b.signedIn ? 200 : 401 }),
  });
  const realFetch = browser.fetch;
  browser.fetch = (request) => {
    if (new URL(request.url).origin === other) {
      browser.requests.push({ url: request.url, credentials: request.credentials });
      return Promise.resolve(new Response("{}", { status: browser.signedIn ? 200 : 401 }));
    }
    return realFetch(request);
  };
  browser.signedIn = false;
  const client = createAccessClient(browser.options({ sessionUrl: `${other}/auth/session` }));
  const pending = later(client.fetch(`${other}/api/notes`, { credentials: "include" }));
  await settle();
  assert.equal(browser.popups[0].url, `${other}/auth/session/signed-in`);
  browser.signedIn = true;
  const before = browser.requests.length;
  await browser.post({ type: access.SIGNED_IN_MESSAGE }, ORIGIN);
  assert.equal(browser.requests.length, before, "this page's origin is not the popup's");
  await browser.post({ type: access.SIGNED_IN_MESSAGE }, other);
  assert.equal((await pending).status, 200);
  const sessionChecks = browser.requests.filter((seen) => seen.url === `${other}/auth/session`);
  assert.ok(sessionChecks.length >= 1);
  assert.ok(sessionChecks.every((seen) => seen.credentials === "include"));
});

test("requests refused meanwhile share one popup and are each sent again once", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const first = client.fetch("/api/a");
  const second = client.fetch("/api/b", { method: "POST", body: "b" });
  await settle();
  await signInThroughPopup(browser);
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  assert.deepEqual(
    browser.appRequests().map((seen) => seen.path).sort(),
    ["/api/a", "/api/a", "/api/b", "/api/b"],
  );
});

test("an opaque redirect is the session's end when the session view agrees", async () => {
  const browser = makeBrowser({
    app: (seen, b) => (b.signedIn ? Response.json({ ok: true }) : opaqueRedirect()),
  });
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes", { method: "POST", body: "x" }));
  await settle();
  await signInThroughPopup(browser);
  assert.deepEqual(await (await pending).json(), { ok: true });
});

test("the app's own redirect, while signed in, is handed back untouched", async () => {
  const browser = makeBrowser({ app: () => opaqueRedirect() });
  const client = createAccessClient(browser.options());
  const response = await client.fetch("/old-place");
  assert.equal(response.type, "opaqueredirect");
  assert.equal(browser.popups.length, 0);
});

test("403 and 5xx are the app's to show: no sign-in", async () => {
  for (const status of [403, 500, 503]) {
    const browser = makeBrowser({ app: () => new Response("", { status }) });
    const client = createAccessClient(browser.options());
    assert.equal((await client.fetch("/api")).status, status);
    assert.equal(browser.popups.length, 0);
    assert.equal(browser.appRequests().length, 1);
  }
});

test("a page load navigates to sign in and comes back to the same place", async () => {
  const browser = makeBrowser();
  browser.signedIn = false;
  const client = createAccessClient(browser.options());
  const pending = later(client.fetch("/api/notes", {}, { signIn: "navigate" }));
  assert.ok(await isPending(pending), "the page is leaving: the promise never settles");
  assert.deepEqual(browser.assigned, [
    `/auth/session/signed-in?next=${encodeURIComponent("/notes?tab=2#new")}`,
  ]);
  assert.equal(browser.popups.length, 0);
});

test("back from sign-in and still refused: an error, not a second navigation", async () => {
  const storage = new Map();
  const first = makeBrowser({ storage });
  first.signedIn = false;
  createAccessClient(first.options()).fetch("/api/notes", {}, { signIn: "navigate" });
  await settle();
  // The page loads again (a new client, the same tab's storage), still refused.
  const second = makeBrowser({ storage });
  second.signedIn = false;
  second.now = first.now + 5_000;
  const client = createAccessClient(second.options({ signIn: "navigate" }));
  await assert.rejects(client.fetch("/api/notes"), { reason: "still-signed-out" });
  assert.deepEqual(second.assigned, []);
});

test("the loop guard lets a later session end navigate again", async () => {
  const storage = new Map();
  const browser = makeBrowser({ storage });
  const client = createAccessClient(browser.options({ signIn: "navigate" }));
  browser.signedIn = false;
  client.fetch("/api/notes");
  await settle();
  assert.equal(browser.assigned.length, 1);
  // Back, signed in: a request gets through and clears the guard.
  browser.signedIn = true;
  await client.fetch("/api/notes");
  assert.equal(storage.size, 0);
  browser.signedIn = false;
  client.fetch("/api/notes");
  await settle();
  assert.equal(browser.assigned.length, 2);
  // Long after the last navigation, another is no loop either.
  browser.now += 61_000;
  client.fetch("/api/notes");
  await settle();
  assert.equal(browser.assigned.length, 3);
});

test("navigateToSignIn works without storage", async () => {
  const browser = makeBrowser();
  const client = createAccessClient(browser.options({ storage: null }));
  client.navigateToSignIn();
  assert.equal(browser.assigned.length, 1);
});

test("session() gives the session view's answer, or null when signed out", async () => {
  const browser = makeBrowser();
  const client = createAccessClient(browser.options());
  assert.deepEqual(await client.session(), { expires_in: 60, email: "ada@example.com" });
  const [seen] = browser.requests;
  assert.equal(seen.url, `${ORIGIN}/auth/session`);
  assert.equal(seen.headers["x-requested-with"], "XMLHttpRequest");
  browser.signedIn = false;
  assert.equal(await client.session(), null);
});

test("the session URL: required, or taken from where the module was served", () => {
  assert.throws(() => createAccessClient({}), TypeError);
  assert.equal(access.sessionUrlFrom("https://app.example/auth/session/cf-access.js"), "/auth/session");
  assert.equal(access.sessionUrlFrom("https://app.example/x/cf-access.js?v=1"), "/x");
  const browser = makeBrowser();
  assert.equal(createAccessClient(browser.options({ sessionUrl: "/s/" })).sessionUrl, "/s");
});

test("isSafeMethod and isSignedOutAnswer", () => {
  assert.ok(access.isSafeMethod("get"));
  assert.ok(!access.isSafeMethod("POST"));
  assert.ok(access.isSignedOutAnswer({ status: 401, type: "basic" }));
  assert.ok(access.isSignedOutAnswer(opaqueRedirect()));
  assert.ok(!access.isSignedOutAnswer({ status: 403, type: "basic" }));
});
