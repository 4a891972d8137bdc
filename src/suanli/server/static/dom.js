// Small DOM helpers. Every piece of data goes in through textContent or attributes: never innerHTML.

/** h("a", {href: "#/x", class: "y", "data-testid": "z", onclick: fn}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key in el && typeof value !== "string") {
      el[key] = value; // properties such as checked, value, disabled
    } else if (key === "value") {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A table: columns [{label, cell(row) -> node|string, class?}], rows; `empty` when there are none. */
export function table(columns, rows, { empty = "Nothing here.", testid, rowTestid } = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.class }, c.label))));
  const body = h("tbody");
  if (!rows.length) {
    body.appendChild(h("tr", null, h("td", { colspan: columns.length, class: "empty" }, empty)));
  }
  for (const row of rows) {
    const tr = h("tr", rowTestid ? { "data-testid": rowTestid(row) } : null);
    for (const c of columns) tr.appendChild(h("td", { class: c.class }, c.cell(row)));
    body.appendChild(tr);
  }
  return h("table", { class: "grid", "data-testid": testid }, head, body);
}

/** A two-column table of label/value pairs (values that are null are left out). */
export function facts(pairs, testid) {
  const rows = pairs.filter(([, v]) => v !== null && v !== undefined && v !== "");
  return h(
    "table",
    { class: "facts", "data-testid": testid },
    h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v)))),
  );
}

// ---- formatting ---------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");

/** An ISO time (or unix seconds) as local "MM-DD HH:MM:SS" (the year when it is not this one). */
export function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const day = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const year = d.getFullYear() === new Date().getFullYear() ? "" : `${d.getFullYear()}-`;
  return `${year}${day} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A time element: local time shown, the exact ISO value on hover. */
export function timeCell(value) {
  if (!value) return "";
  return h("time", { datetime: String(value), title: String(value) }, fmtTime(value));
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} m ${Math.round(seconds % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} m`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function fmtBytes(bytes) {
  if (!bytes) return "0";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v < 10 && i ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function fmtNumber(value, digits = 2) {
  if (value === null || value === undefined) return "";
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return String(Number(value.toFixed(abs < 1 ? 4 : digits)));
}

/** "2 CPU, 16 GiB, A100:8" from a job's resources. */
export function fmtResources(res, numNodes) {
  if (!res) return "";
  const parts = [];
  if (res.cpus) parts.push(`${fmtNumber(res.cpus)} CPU`);
  if (res.memory_bytes) parts.push(fmtBytes(res.memory_bytes));
  for (const [type, n] of Object.entries(res.accelerators || {})) parts.push(`${type}:${n}`);
  const text = parts.join(", ");
  return numNodes > 1 ? `${numNodes} × (${text})` : text;
}

export function statusBadge(status) {
  return h("span", { class: `badge s-${String(status).toLowerCase()}`, "data-testid": "status" }, status);
}

/** A "used / total" bar (width set through the CSSOM, which the CSP allows). */
export function meter(used, total, label) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const fill = h("span", { class: ["fill", pct >= 100 ? "full" : pct >= 80 ? "high" : null] });
  fill.style.width = `${pct}%`;
  return h("span", { class: "meter" }, h("span", { class: "bar" }, fill), h("span", { class: "label" }, label));
}

// Call `load` now and again every `ms` while the tab is visible; the returned function stops it (and
// calls `stop`, e.g. to abort a request in flight).
export function every(ms, load, stop = () => {}) {
  load();
  const timer = setInterval(() => {
    if (!document.hidden) load();
  }, ms);
  return () => {
    clearInterval(timer);
    stop();
  };
}
