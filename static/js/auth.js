// The JWT pair (access + refresh) kept in this tab's sessionStorage, and fetch with auth.

const STORAGE_KEY = "tradeapp.auth";
const TOKEN_URL = "/api/auth/token/";
const REFRESH_URL = "/api/auth/token/refresh/";
const REVOKE_URL = "/api/auth/token/revoke/";

/** Decode a JWT's payload (no verification: the server verifies); null when malformed. */
export function decodeJwt(token) {
  try {
    const part = token.split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Milliseconds until the token expires (negative when expired, -Infinity when unreadable). */
export function msUntilExpiry(token, now = Date.now()) {
  const claims = token ? decodeJwt(token) : null;
  if (!claims || typeof claims.exp !== "number") return -Infinity;
  return claims.exp * 1000 - now;
}

export function getAuth() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) || null;
  } catch {
    return null;
  }
}

export function setAuth(auth) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(auth));
  window.dispatchEvent(new CustomEvent("auth-changed"));
}

export function clearAuth() {
  sessionStorage.removeItem(STORAGE_KEY);
  window.dispatchEvent(new CustomEvent("auth-changed"));
}

export function isSignedIn() {
  const auth = getAuth();
  return Boolean(auth && auth.refresh);
}

export function getAccessToken() {
  return getAuth()?.access || null;
}

/** Exchange username and password for the JWT pair; throws an Error with the server's message. */
export async function signIn(username, password) {
  const response = await fetch(TOKEN_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.detail || "Sign-in failed. Check your username and password.");
  }
  setAuth({ access: data.access, refresh: data.refresh, username });
  return data;
}

/** Sign out: revoke the refresh token on the server (best effort), then forget the pair. */
export async function signOut() {
  const refresh = getAuth()?.refresh;
  clearAuth();
  if (!refresh) return;
  try {
    await fetch(REVOKE_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ refresh }),
    });
  } catch {
    // Offline: the token lapses by itself (JWT_REFRESH_DAYS).
  }
}

let refreshing = null;

/** Get a new access token with the refresh token; one request at a time. Resolves null on failure. */
export function refreshAccessToken() {
  if (!refreshing) {
    refreshing = (async () => {
      const auth = getAuth();
      if (!auth?.refresh) return null;
      try {
        const response = await fetch(REFRESH_URL, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh: auth.refresh }),
        });
        if (!response.ok) {
          // A refused refresh token will never work again; a 5xx might.
          if (response.status === 400 || response.status === 401) clearAuth();
          return null;
        }
        const data = await response.json();
        // The server rotates refresh tokens: the one just sent is revoked, keep the new one.
        setAuth({ ...auth, access: data.access, refresh: data.refresh || auth.refresh });
        return data.access;
      } catch {
        return null;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** An access token valid for at least minValidityMs, refreshing it first when needed. */
export async function getFreshAccessToken(minValidityMs = 30_000) {
  const access = getAccessToken();
  if (access && msUntilExpiry(access) > minValidityMs) return access;
  return refreshAccessToken();
}

export function signInUrl() {
  const next = window.location.pathname + window.location.search;
  return `/signin/?next=${encodeURIComponent(next)}`;
}

/** Send the browser to the sign-in page unless signed in; returns true when signed in. */
export function requireAuth() {
  if (isSignedIn()) return true;
  window.location.assign(signInUrl());
  return false;
}

/** fetch() a JSON API with the bearer token; on 401 refresh once and retry, then go to sign-in. */
export async function apiFetch(path, { method = "GET", body } = {}) {
  const send = async (token) =>
    fetch(path, {
      method,
      headers: {
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let response = await send(await getFreshAccessToken());
  if (response.status === 401) {
    const token = await refreshAccessToken();
    if (token) response = await send(token);
    if (response.status === 401) {
      clearAuth();
      window.location.assign(signInUrl());
    }
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, data };
}
