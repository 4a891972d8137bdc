// The server's JSON API: the bearer token lives in sessionStorage (never a cookie) and goes in the
// Authorization header. A 401 anywhere sends the page back to the login form.

const TOKEN_KEY = "suanli.token";
const WHO_KEY = "suanli.who";

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

let onUnauthorized = () => {};

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  get who() {
    try {
      return JSON.parse(sessionStorage.getItem(WHO_KEY) || "null");
    } catch {
      return null;
    }
  },
  save(token, who) {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(WHO_KEY, JSON.stringify(who));
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(WHO_KEY);
  },
  onUnauthorized(fn) {
    onUnauthorized = fn;
  },
};

/** The query string of a params object; arrays repeat the key; empty values are left out. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== null && v !== undefined && v !== "") q.append(key, String(v));
    }
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let field = null;
  try {
    const doc = await response.json();
    if (doc && typeof doc.error === "string") message = doc.error;
    if (doc && doc.field) field = doc.field;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, field);
}

async function send(method, path, body, { signal, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `cannot reach the server (${e.message})`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && auth) onUnauthorized(error);
    throw error;
  }
  return response;
}

export const api = {
  async get(path, params, opts) {
    return (await send("GET", path + query(params), undefined, opts)).json();
  },
  async post(path, body, opts) {
    return (await send("POST", path, body ?? {}, opts)).json();
  },
  async del(path, opts) {
    return (await send("DELETE", path, undefined, opts)).json();
  },
  async login(user, password, project) {
    const body = { user, password };
    if (project) body.project = project;
    const response = await send("POST", "/api/login", body, { auth: false });
    return response.json();
  },
};

/**
 * Read a server-sent event stream with fetch (EventSource cannot send the Authorization header) and
 * call onEvent(name, data) for each event, data parsed as JSON when it is. Resolves when the stream
 * ends; rejects on an HTTP error or a dropped connection; stops quietly when `signal` aborts.
 */
export async function streamEvents(path, onEvent, signal) {
  const response = await send("GET", path, undefined, { signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const dispatch = (block) => {
    let name = "message";
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    const text = data.join("\n");
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text data
    }
    onEvent(name, parsed);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^(\r\n\r\n|\n\n|\r\r)/, "");
        dispatch(block);
      }
    }
    if (buffer.trim()) dispatch(buffer);
  } finally {
    reader.releaseLock();
  }
}
