// Who is signed in: the bearer token (kept in sessionStorage, so it goes
// when the tab closes), its claims, and what the permission table says the
// token allows. The server decides every call; this only explains buttons.

const KEY = 'agentry.console.token';
/** The sign-in under way: its state, PKCE verifier and tenant. */
const PENDING = 'agentry.console.signin';

/** The console's client id at the built-in identity provider. */
export const CLIENT_ID = 'c0ffee00-0000-4000-8000-0000000000c1';
/** The tenant of `agentry user add` without --tenant. */
export const DEFAULT_TENANT = 'c0ffee00-0000-4000-8000-000000000001';
/** Where the identity provider sends the browser back: this page. */
export function redirectUri() {
  return `${location.origin}/console/`;
}

/** The token, or null when signed out (or when it has expired). */
export function token() {
  const value = sessionStorage.getItem(KEY);
  if (!value) return null;
  const c = decode(value);
  if (!c || (typeof c.exp === 'number' && c.exp * 1000 <= Date.now())) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return value;
}

/** Keeps `value` as the token; answers why not when it is no usable JWT. */
export function signIn(value) {
  const trimmed = value.trim().replace(/^Bearer\s+/i, '');
  const c = decode(trimmed);
  if (!c) return 'This is not a JSON Web Token (three dot-separated parts, as agentry token prints).';
  if (typeof c.exp === 'number' && c.exp * 1000 <= Date.now()) return 'This token has expired; mint a new one.';
  sessionStorage.setItem(KEY, trimmed);
  return null;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

function base64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A PKCE verifier and state, kept in this tab for the way back; the S256 challenge. */
async function pkce(pending) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ ...pending, state, verifier }));
  return { state, challenge };
}

const NO_CRYPTO = 'This browser offers no Web Crypto here: open the console over https, or on localhost.';

/**
 * Starts the authorization-code flow with PKCE at this server's identity
 * provider: a random verifier and state kept in this tab, the S256
 * challenge sent; the browser leaves for the sign-in page. Answers why not
 * when the browser cannot (crypto.subtle needs https or a loopback address).
 */
export async function startSignIn(tenant) {
  if (!globalThis.crypto || !crypto.subtle) return NO_CRYPTO;
  const { state, challenge } = await pkce({ tenant });
  const params = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: redirectUri(),
    // Graph's application id: the console names no other site.
    scope: '00000003-0000-0000-c000-000000000000/.default',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  location.assign(`/${encodeURIComponent(tenant)}/oauth2/v2.0/authorize?${params}`);
  return null;
}

/**
 * The same flow at the external OpenID Connect issuer of `/console/config.json`
 * (Entra ID, or another): the console is a single-page application
 * registered there with this page as its redirect URI, a public client.
 */
export async function startExternalSignIn(external) {
  if (!globalThis.crypto || !crypto.subtle) return NO_CRYPTO;
  const { state, challenge } = await pkce({ external: true });
  const params = new URLSearchParams({
    client_id: external.clientId,
    response_type: 'code',
    redirect_uri: redirectUri(),
    scope: external.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const url = new URL(external.authorizationEndpoint);
  for (const [name, value] of params) url.searchParams.set(name, value);
  location.assign(url.href);
  return null;
}

let signInConfig = null;

/**
 * How this server lets the console sign in (`/console/config.json`):
 * {external: {clientId, scope, authorizationEndpoint, tokenEndpoint} or null,
 * localUsers, devSignIn}.
 */
export async function loadSignInConfig() {
  if (signInConfig) return signInConfig;
  const res = await fetch('/console/config.json', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`the sign-in configuration answered ${res.status}`);
  signInConfig = await res.json();
  return signInConfig;
}

/**
 * The answer of the identity provider in this page's URL, if there is one
 * (`?code=…&state=…`, or `?error=…`), checked against the sign-in this tab
 * started: {code, verifier, tenant, external}, or {problem}. The sign-in under way is
 * forgotten either way: a code is redeemed once.
 */
export function signInAnswer() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null');
  } catch {
    pending = null;
  }
  sessionStorage.removeItem(PENDING);
  if (params.has('error')) {
    return { problem: params.get('error_description') || params.get('error') };
  }
  if (!pending || typeof pending.state !== 'string' || pending.state !== params.get('state')) {
    return { problem: 'This sign-in was not started from this tab (its state does not match): sign in again.' };
  }
  return {
    code: params.get('code'), verifier: pending.verifier, tenant: pending.tenant, external: pending.external === true,
  };
}

/** The token's claims (not verified here: the server verifies every call). */
export function claims() {
  const value = token();
  return value ? decode(value) : null;
}

function decode(jwt) {
  const parts = jwt.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === 'object' ? value : null;
  } catch {
    return null;
  }
}

/** Who the token names, for the top bar. */
export function caller() {
  const c = claims();
  if (!c) return null;
  const delegated = typeof c.scp === 'string';
  return {
    delegated,
    name: c.upn || c.preferred_username || c.name || c.oid || c.appid || c.sub || 'unknown',
    tenant: c.tid || '',
  };
}

let table = null;

/** Loads the permission table once (`/console/permissions.json`). */
export async function loadPermissions() {
  if (table) return table;
  const res = await fetch('/console/permissions.json', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`the permission table answered ${res.status}`);
  table = await res.json();
  return table;
}

/**
 * Whether the token allows `action` (a row of the permission table, on a
 * reserved collection when `reserved` is 'Global' or 'Quarantined'):
 * {ok: true} or {ok: false, needs: 'what is missing, in words'}.
 */
export function allows(action, reserved = 'No') {
  const c = claims();
  if (!table || !c) return { ok: true };
  const rule = table.rules.find((r) => r.action === action && r.reserved === reserved) ??
    table.rules.find((r) => r.action === action && r.reserved === 'No');
  if (!rule) return { ok: true };
  const delegated = typeof c.scp === 'string';
  const held = delegated ? c.scp.split(' ') : (Array.isArray(c.roles) ? c.roles : []);
  const groups = delegated ? rule.delegated : rule.application;
  if (!groups) {
    return { ok: false, needs: delegated ? 'an application token (not a user\'s)' : 'a user\'s token (not an application\'s)' };
  }
  const missing = groups.filter((group) => !group.some((p) => held.includes(p)));
  const needs = missing.map((group) =>
    group.length === 1 ? `the permission ${group[0]}` : `one of the permissions ${group.join(', ')}`);
  if (delegated && rule.roles.length > 0) {
    const wids = (Array.isArray(c.wids) ? c.wids : []).map((w) => String(w).toLowerCase());
    if (!rule.roles.some((r) => wids.includes(r.toLowerCase()))) {
      const names = rule.roles.map((r) => table.roleNames[r] ?? r);
      needs.push(`the directory role ${names.join(' or ')}`);
    }
  }
  return needs.length === 0 ? { ok: true } : { ok: false, needs: needs.join(' and ') };
}
