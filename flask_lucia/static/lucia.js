// flask-lucia browser module: session store, sign-out, silent refresh,
// cross-tab sync, and passkeys. One ES module, no dependencies. Endpoints are resolved
// against this file's own URL, so the blueprint prefix is never hard-coded.
// Tabs exchange {type, checksum, expires, user}; tokens never leave cookies.

const CHANNEL = "lucia"; // BroadcastChannel name
const KEY = "lucia:sync"; // localStorage key of the `storage` fallback
const HAD = "lucia:had"; // localStorage: "1" while some page of the origin saw a session
const LOCK = "lucia-refresh"; // Web Locks name: one refresher at a time
const EARLY = 60000; // refresh this long before expiry (ms)
const SETTLE = 100; // ms to let a broadcast land (lock hand-over, claims)
const tabId = Math.random().toString(36).slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Error answered by the server: `.code` is its `error` field (DESIGN §9). */
export class LuciaError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "LuciaError";
    this.code = code;
    this.status = status;
  }
}

// state: undefined = not known yet, null = signed out,
// {user, expires, checksum} = signed in. The store shows {user, expires}.
let state;
let value = null;
let loading = null;
let csrfToken; // sent as X-CSRFToken (page data, else <meta name="csrf-token">)
let claims = []; // claims heard from other tabs (fallback without Web Locks)
const subscribers = new Set();
const syncs = new Set(); // onSessionUpdate callbacks of running syncs

const toState = (d) =>
  d && d.user && d.session
    ? { user: d.user, expires: d.session.expires, checksum: d.session.checksum }
    : null;

// The one fetch helper: GET when `body` is undefined, JSON POST otherwise.
async function api(path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    if (csrfToken) headers["X-CSRFToken"] = csrfToken;
  }
  const res = await fetch(new URL(path, import.meta.url), {
    method: body === undefined ? "GET" : "POST",
    credentials: "same-origin",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new LuciaError(data?.error || "UNKNOWN_ERROR", data?.message, res.status);
  }
  return data;
}

// Call every listener; one that throws is reported and does not stop the rest.
function each(fns, arg) {
  for (const fn of [...fns]) {
    try {
      fn(arg);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

// Whether a page of this origin last saw a session: a page that finds none while
// this is set learns of a sign-out made without signOut() (the form button, a
// revoked device) and tells the other tabs.
function marked(has) {
  try {
    if (has === undefined) return localStorage.getItem(HAD) === "1";
    if (has) localStorage.setItem(HAD, "1");
    else localStorage.removeItem(HAD);
  } catch {
    // storage disabled: only signOut() and the server's answers reach the other tabs
  }
  return false;
}

// Set this tab's state; tell subscribers when it changed. Returns "changed".
const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
function setStore(next) {
  const changed = !same(next, state);
  state = next;
  if (next && !marked()) marked(true);
  if (changed) {
    value = next && Object.freeze({ user: next.user, expires: next.expires });
    each(subscribers, value);
  }
  return changed;
}

// Message transport: BroadcastChannel, else the localStorage `storage` event.
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
function broadcast(msg) {
  if (channel) return channel.postMessage(msg);
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...msg, nonce: Math.random() }));
    localStorage.removeItem(KEY); // the event has fired; keep nothing on disk
  } catch {
    // storage disabled: this tab cannot sync
  }
}
// Adopt `next` and tell the other tabs ("signin" / "refresh" / "signout").
function tell(next, type) {
  setStore(next);
  broadcast(next ? { type, ...next } : { type: "signout" });
  if (!next) marked(false); // told: the next page without a session need not check
}

// A change made elsewhere (another tab, the server): onSessionUpdate
// callbacks run when signed-in-ness or the user changed, not on a refresh.
function notify(had, next) {
  if (!had !== !next || JSON.stringify(had?.user) !== JSON.stringify(next?.user)) {
    each(syncs, !!next);
  }
}
function adopt(next) {
  const had = state;
  if (setStore(next)) notify(had, next);
}

function receive(msg) {
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "claim") {
    claims = claims.filter((c) => c.at > Date.now() - 5000);
    return claims.push({ id: msg.id, at: msg.at });
  }
  if (!syncs.size) return;
  if (msg.type === "signout") return adopt(null);
  if (msg.type !== "signin" && msg.type !== "refresh") return;
  if (state && msg.expires < state.expires) return; // stale news
  adopt({ user: msg.user, expires: msg.expires, checksum: msg.checksum });
}
if (channel) channel.onmessage = (e) => receive(e.data);
else {
  addEventListener("storage", (e) => {
    if (e.key !== KEY || !e.newValue) return;
    try {
      receive(JSON.parse(e.newValue));
    } catch {
      // not ours
    }
  });
}

// Ask the server (GET session); broadcast what we learn if it is news. A session
// gone that this tab or another page had is a sign-out, and every tab hears it.
function load() {
  loading ||= api("session")
    .then(toState, (e) => {
      if (e.status === 401) return null;
      throw e;
    })
    .then((next) => {
      const gone = !next && (state || marked());
      return same(next, state) && !gone ? setStore(next) : tell(next, "signin");
    })
    .finally(() => (loading = null));
  return loading;
}

// A tab coming back (or restored from the back-forward cache) re-checks.
function recheck() {
  const had = state;
  if (syncs.size) load().then(() => notify(had, state), () => {}); // offline: no sign-out
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") recheck();
});
addEventListener("pageshow", (e) => e.persisted && recheck());

/** Current user object, or null when signed out. */
export async function getUser() {
  if (state === undefined) await load();
  return state?.user ?? null;
}

const store = {
  subscribe(fn) {
    const run = (v) => fn(v);
    subscribers.add(run);
    run(value);
    if (state === undefined) load().catch(() => {});
    return () => subscribers.delete(run);
  },
};
/** The session store: subscribe(fn) gets {user, expires} or null, now and on change. */
export function getSession() {
  return store;
}

/** POST sign-out, sign every tab out, then go where the server says (if anywhere). */
export async function signOut(redirect) {
  const data = await api("sign-out", { redirect: redirect == null ? null : String(redirect) });
  tell(null);
  if (data?.redirect) location.assign(data.redirect);
}

/** POST refresh; resolves to the new expiry (unix ms). 401: every tab signs out. */
export async function refreshSession() {
  let data;
  try {
    data = await api("refresh", {});
  } catch (e) {
    if (e.status === 401) tell(null);
    throw e;
  }
  if (typeof data?.expires !== "number") throw new LuciaError("UNKNOWN_ERROR", "bad refresh answer");
  if (state) tell({ ...state, expires: data.expires, checksum: data.checksum ?? null }, "refresh");
  else await load(); // user unknown here: fetch it (and announce it)
  return data.expires;
}

/**
 * Start cross-tab sync: other tabs' sign-in, sign-out and refresh update this
 * tab's store; onSessionUpdate(hasSession) runs on changes made elsewhere.
 * Returns a function that stops it.
 */
export function handleSession(onSessionUpdate) {
  const fn = (has) => onSessionUpdate?.(has);
  syncs.add(fn);
  return () => syncs.delete(fn);
}

// Run fn unless another tab is at it: Web Locks (skip while held), else a
// broadcast claim that the earliest (then lowest id) claimant wins.
async function exclusive(fn) {
  if (navigator.locks) return navigator.locks.request(LOCK, { ifAvailable: true }, (l) => l && fn());
  const me = { id: tabId, at: Date.now() };
  broadcast({ type: "claim", ...me });
  await sleep(SETTLE);
  const rivals = claims.filter((c) => c.at > me.at - 1000);
  if (rivals.some((c) => c.at < me.at || (c.at === me.at && c.id < me.id))) return;
  return fn();
}

/**
 * Refresh about 60 s before expiry, one tab for all. A refused refresh (401)
 * signs every tab out and calls onError(error); another 4xx calls onError and
 * retries; network errors and 5xx retry quietly with backoff (1 s, 2 s, 4 s ...
 * 30 s) and never sign anyone out. Returns a stop function.
 */
export function handleSilentRefresh(onError) {
  let timer;
  let seen; // expiry the last attempt tried to extend
  let failures = 0;
  let busy = false;
  const sync = () => {};
  const schedule = () => {
    clearTimeout(timer);
    if (!syncs.has(sync) || !state || busy) return;
    if (state.expires > seen) failures = 0; // extended meanwhile (maybe elsewhere)
    const left = state.expires - Date.now();
    const wait = failures
      ? Math.min(1000 * 2 ** (failures - 1), 30000)
      : left > EARLY ? left - EARLY : Math.max(left / 2, 1000);
    timer = setTimeout(run, Math.min(wait, 2 ** 31 - 1));
  };
  const run = async () => {
    if (!state || (!failures && state.expires - Date.now() > EARLY + 1000)) return schedule();
    seen = state.expires;
    busy = true;
    try {
      await exclusive(async () => {
        if (!state || state.expires > seen) return; // another tab did it
        try {
          await refreshSession();
        } finally {
          await sleep(SETTLE); // hold the lock until the others heard
        }
      });
      failures = 0;
    } catch (e) {
      if (onError && e instanceof LuciaError && e.status < 500) each([onError], e); // refused
      if (e?.status === 401) return;
      failures++;
    } finally {
      busy = false;
    }
    schedule();
  };
  syncs.add(sync);
  const unsubscribe = store.subscribe(schedule);
  return () => {
    syncs.delete(sync);
    unsubscribe();
    clearTimeout(timer);
  };
}

// Passkeys (WebAuthn): the server's JSON carries bytes as base64url.
const bytes = (s) =>
  Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const b64url = (b) =>
  btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const ids = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));
async function ceremony(path, make, options) {
  if (!globalThis.PublicKeyCredential) throw new LuciaError("AUTH_INVALID_REQUEST", "No passkeys here");
  const o = await api(`passkeys/${path}/options`, {});
  const c = await make({ ...o, challenge: bytes(o.challenge), ...options(o) });
  const r = c.response;
  const response = { clientDataJSON: b64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64url(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = b64url(r.authenticatorData);
    response.signature = b64url(r.signature);
    response.userHandle = r.userHandle && b64url(r.userHandle);
  }
  const ext = c.getClientExtensionResults?.() ?? {};
  const { id, type, authenticatorAttachment } = c;
  return {
    credential: { id, rawId: b64url(c.rawId), type, response, clientExtensionResults: ext, authenticatorAttachment },
  };
}

/** Add a passkey to the signed-in (fresh) account; resolves to it: {id, name, ...}. */
export async function registerPasskey(name) {
  const body = await ceremony(
    "register",
    (publicKey) => navigator.credentials.create({ publicKey }),
    (o) => ({ user: { ...o.user, id: bytes(o.user.id) }, excludeCredentials: ids(o.excludeCredentials) }),
  );
  if (name) body.name = String(name);
  return (await api("passkeys/register/verify", body)).passkey;
}

/** Sign in with any passkey of this site (no username); resolves to the user; tells every tab. */
export async function signInWithPasskey() {
  const body = await ceremony(
    "sign-in",
    (publicKey) => navigator.credentials.get({ publicKey }),
    (o) => ({ allowCredentials: ids(o.allowCredentials) }),
  );
  const data = await api("passkeys/sign-in/verify", body);
  tell(toState(data), "signin");
  return data.user;
}

// Page data from lucia_script(): the first getUser() needs no request.
csrfToken = document.querySelector('meta[name="csrf-token"]')?.content;
const pageData = document.getElementById("lucia-page-data");
if (pageData) {
  try {
    const d = JSON.parse(pageData.textContent);
    csrfToken = d.csrfToken || csrfToken;
    setStore(toState(d));
  } catch {
    // malformed page data: fall back to GET session
  }
}
// A page loaded with a session announces it to the other tabs; one loaded
// without, after a page had one, checks with the server and announces the
// sign-out (the form button's redirect lands here).
if (state) broadcast({ type: "signin", ...state });
else if (state === null && marked()) load().catch(() => {});
