// Type declarations for flask-lucia's browser module (lucia.js).

/** The public fields of a user, as the server sends them (never a password hash). */
export interface User {
  [field: string]: unknown;
}

/** The value of the session store while signed in. */
export interface SessionValue {
  readonly user: User;
  /** Expiry of the access token, unix milliseconds. */
  readonly expires: number;
}

/** A readable store (Svelte-compatible). */
export interface Readable<T> {
  /** Calls `run` at once with the current value and on every change; returns an unsubscribe. */
  subscribe(run: (value: T) => void): () => void;
}

/** Error codes of DESIGN §9 (the server may add others). */
export type LuciaErrorCode =
  | "AUTH_INVALID_ACCESS_TOKEN"
  | "AUTH_INVALID_REFRESH_TOKEN"
  | "AUTH_INVALID_PASSWORD"
  | "AUTH_INVALID_PROVIDER_ID"
  | "AUTH_INVALID_USER_ID"
  | "AUTH_DUPLICATE_PROVIDER_ID"
  | "AUTH_DUPLICATE_USER_DATA"
  | "AUTH_OUTDATED_PASSWORD"
  | "AUTH_INVALID_REQUEST"
  | "AUTH_NOT_AUTHENTICATED"
  | "AUTH_TOO_MANY_ATTEMPTS"
  | "DATABASE_FETCH_FAILED"
  | "DATABASE_UPDATE_FAILED"
  | "UNKNOWN_ERROR"
  | "AUTH_SECOND_FACTOR_REQUIRED"
  | "AUTH_SECOND_FACTOR_SETUP_REQUIRED"
  | "AUTH_INVALID_CODE"
  | (string & {});

/** Thrown when the server answers an error JSON `{"error": code, "message": text}`. */
export declare class LuciaError extends Error {
  constructor(code: LuciaErrorCode, message?: string, status?: number);
  readonly name: "LuciaError";
  /** The server's `error` field, or "UNKNOWN_ERROR" when the body had none. */
  readonly code: LuciaErrorCode;
  /** HTTP status of the answer. */
  readonly status?: number;
}

/** Current user, or null. From the page data when present, else `GET <prefix>/session`. */
export declare function getUser(): Promise<User | null>;

/** The session store: `{user, expires}` while signed in, otherwise null. */
export declare function getSession(): Readable<SessionValue | null>;

/**
 * `POST <prefix>/sign-out`, then signs every other tab out and, when the
 * server answers a (same-origin) redirect, navigates there.
 */
export declare function signOut(redirect?: string | URL | null): Promise<void>;

/**
 * `POST <prefix>/refresh`; resolves to the new expiry (unix ms) and tells the
 * other tabs. On 401 every tab signs out and it rejects with
 * `LuciaError("AUTH_INVALID_REFRESH_TOKEN")`.
 */
export declare function refreshSession(): Promise<number>;

/**
 * Starts cross-tab sync: sign-in, sign-out and refresh in another tab update
 * this tab's store, and a tab becoming visible re-checks with the server.
 * `onSessionUpdate` runs when a change made elsewhere signs this tab in or out
 * or changes the user. Returns a function that stops the sync.
 */
export declare function handleSession(onSessionUpdate?: (hasSession: boolean) => void): () => void;

/**
 * Refreshes about 60 s before expiry, one tab for all (Web Locks, else a
 * broadcast claim); the other tabs adopt the new expiry. A refused refresh
 * (401) signs every tab out and calls `onError`; another 4xx calls `onError`
 * and retries; network errors and 5xx retry quietly with backoff (1 s, 2 s,
 * 4 s ... 30 s) and never sign anyone out. Returns a function that stops it.
 */
export declare function handleSilentRefresh(onError?: (error: LuciaError) => void): () => void;

/** A passkey of the signed-in user, as `GET <prefix>/passkeys` lists it. */
export interface Passkey {
  readonly id: string;
  readonly name: string;
  /** How the browser reaches its authenticator: "internal", "usb", "hybrid" ... */
  readonly transports: readonly string[];
  /** Unix milliseconds. */
  readonly created_at: number;
  /** Unix milliseconds, or null when it never signed in. */
  readonly last_used_at: number | null;
}

/**
 * Adds a passkey to the signed-in account (the session must be fresh):
 * `POST <prefix>/passkeys/register/options`, `navigator.credentials.create()`,
 * then `POST <prefix>/passkeys/register/verify` with `name` (default "Passkey").
 * Rejects with the browser's `DOMException` ("NotAllowedError": cancelled) or a
 * `LuciaError` (401 with a stale session: confirm the password first).
 */
export declare function registerPasskey(name?: string | null): Promise<Passkey>;

/**
 * Signs in with any passkey of this site, no username asked:
 * `POST <prefix>/passkeys/sign-in/options`, `navigator.credentials.get()`, then
 * `POST <prefix>/passkeys/sign-in/verify`. The new session is fresh and counts as
 * MFA; every tab learns of it. Resolves to the user.
 */
export declare function signInWithPasskey(): Promise<User>;
