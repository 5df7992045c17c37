// Calls to the Graph API of this server, with the signed-in token. Every
// failure becomes a GraphError carrying what Graph's error envelope says:
// the message, the code and the request id.

import { token } from './session.js';

const ROOT = '/beta';

export class GraphError extends Error {
  constructor({ status = 0, code = '', message = '', innerCode = '', requestId = '', date = '' }) {
    super(message);
    this.status = status;
    this.code = code;
    this.innerCode = innerCode;
    this.requestId = requestId;
    this.date = date;
  }

  /** From an answer and its parsed body (the envelope when there is one). */
  static from(res, body, text) {
    const error = body && typeof body === 'object' ? body.error : null;
    const inner = (error && error.innerError) || {};
    return new GraphError({
      status: res.status,
      code: (error && error.code) || '',
      innerCode: inner.code || '',
      message: (error && error.message) || text || `${res.status} ${res.statusText}`,
      requestId: inner['request-id'] || res.headers.get('request-id') || '',
      date: inner.date || '',
    });
  }
}

let onUnauthorized = () => {};

/** What to do when the server refuses the token (401). */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/** A path segment for a key: ids may hold spaces, colons, quotes. */
export function key(id) {
  return encodeURIComponent(id).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A query string from [name, value] pairs, `$` kept, spaces as %20. */
export function query(pairs) {
  const parts = pairs
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([name, value]) => `${name}=${encodeURIComponent(String(value))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * The path (below /beta, or the control plane's `/_agentry/…`) or absolute
 * URL `target`, as a URL of this server: links the server hands out
 * (`@odata.nextLink`) are followed on this origin only, so the token never
 * goes anywhere else.
 */
function resolve(target) {
  if (/^https?:/i.test(target)) {
    const url = new URL(target);
    return url.pathname + url.search;
  }
  return target.startsWith('/_agentry/') ? target : ROOT + target;
}

/**
 * One call: `{json, text, etag, status, requestId}`, or a thrown GraphError.
 * `body` is sent as JSON, `raw` as it is (a JSON text kept digit for
 * digit); `etag` sends If-Match; `eventual` the ConsistencyLevel that
 * $search needs.
 */
export async function call(method, target, { body, raw, etag, eventual, prefer } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined || raw !== undefined) headers['Content-Type'] = 'application/json';
  if (etag) headers['If-Match'] = etag;
  if (eventual) headers.ConsistencyLevel = 'eventual';
  if (prefer) headers.Prefer = prefer;
  let res;
  try {
    res = await fetch(resolve(target), {
      method,
      headers,
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      cache: 'no-store',
    });
  } catch (e) {
    throw new GraphError({ message: `The server did not answer (${e.message}). Is it still running?` });
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const error = GraphError.from(res, json, text);
    if (res.status === 401) onUnauthorized(error);
    throw error;
  }
  return {
    status: res.status,
    json,
    text,
    etag: res.headers.get('ETag') || (json && json['@odata.etag']) || '',
    requestId: res.headers.get('request-id') || '',
  };
}

/** `POST /console/session`: a token of the built-in admin (the loopback switch). */
export async function devSession() {
  let res;
  try {
    res = await fetch('/console/session', { method: 'POST', headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    throw new GraphError({ message: `The server did not answer (${e.message}).` });
  }
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  if (!res.ok || !json || typeof json.access_token !== 'string') throw GraphError.from(res, json, text);
  return json;
}

/**
 * Redeems an authorization code at an identity provider's token endpoint
 * (`grant_type=authorization_code` with the PKCE verifier). An OAuth error
 * becomes a GraphError with its description, its error as the code and
 * its trace id as the request id.
 */
export async function redeemCode({ tenant, endpoint, scope, code, verifier, clientId, redirectUri }) {
  const body = new URLSearchParams({
    grant_type: 'authorization_code', client_id: clientId, code, code_verifier: verifier, redirect_uri: redirectUri,
  });
  if (scope) body.set('scope', scope);
  let res;
  try {
    // This server's token endpoint, or the external issuer's (the only other
    // place the console's policy lets it call).
    res = await fetch(endpoint ?? `/${encodeURIComponent(tenant)}/oauth2/v2.0/token`, {
      method: 'POST', body, cache: 'no-store', headers: { Accept: 'application/json' },
    });
  } catch (e) {
    throw new GraphError({ message: `The server did not answer (${e.message}).` });
  }
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  if (res.ok && json && typeof json.access_token === 'string') return json;
  throw new GraphError({
    status: res.status,
    code: (json && json.error) || '',
    message: (json && json.error_description) || text || `${res.status} ${res.statusText}`,
    requestId: (json && json.trace_id) || res.headers.get('request-id') || '',
    date: (json && json.timestamp) || '',
  });
}
