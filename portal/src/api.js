// The portal's one way to the JSON API (/api/v1): same origin, the session cookie, and on writes
// the session's CSRF token (the pbx_csrf cookie, readable by design) in X-CSRF-Token.
export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.error = error;
  }

  // The form field the API names as the culprit: `field` of a product-rule error, or the body
  // member of the first validation problem.
  get field() {
    if (this.error.field) return String(this.error.field).split('.')[0];
    const loc = this.error.details?.[0]?.location;
    return loc && loc[0] === 'body' && loc.length > 1 ? String(loc[1]) : null;
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)pbx_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}

// Listeners told when any call answers 401 (the session ended): the shell shows the login.
const unauthenticated = new Set();
export const onUnauthenticated = (fn) => unauthenticated.add(fn);

// `body`: JSON, or a File sent as it is (its own content type) when `raw` is set, or FormData
// (multipart: the browser writes its content type with the boundary).
export async function api(method, path, body, raw = false) {
  const headers = { accept: 'application/json' };
  const form = body instanceof FormData;
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken();
  if (body !== undefined && !form) headers['content-type'] = raw ? body.type : 'application/json';
  const r = await fetch(API + path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined || raw || form ? body : JSON.stringify(body),
  });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({ error: { message: r.statusText } }));
  if (!r.ok) {
    const err = new ApiError(r.status, data.error || {});
    if (r.status === 401 && !path.startsWith('/auth/')) unauthenticated.forEach((fn) => fn(err));
    throw err;
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const put = (path, body) => api('PUT', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);
export const upload = (path, file) => api('POST', path, file, true);
export const postForm = (path, form) => api('POST', path, form);
