// The API client: the key lives in this tab's sessionStorage only.

const KEY = 'reflector.key';

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(k) { if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY); }

/** JSON from the API (path from the origin); throws ApiError on a non-2xx answer. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  const key = getKey();
  if (key) headers.authorization = 'Bearer ' + key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/** `a/b/c` with each segment URL-encoded. */
export function path(...parts) {
  return parts.map((p, i) => i === 0 ? p : encodeURIComponent(p)).join('/');
}

/** A query string from an object (empty values left out). */
export function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}
