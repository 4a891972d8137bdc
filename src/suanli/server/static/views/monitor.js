// Monitoring: the Monitor page (running jobs with what they use now, open alerts, the efficiency of the
// last 7 days) and the usage panel of the job page (efficiency like seff, CPU / memory / GPU over time).

import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { every, facts, fmtBytes, fmtDuration, fmtNumber, h, meter, replace, table, timeCell } from "../dom.js";

const REFRESH_MS = 5000;
const PANEL_MIN_MS = 5000; // the job page reads its samples and report at most this often
const PANEL_MAX_MS = 60_000;
const FINAL_READ_MS = 1500; // after the job ended
const MARKS = { idle: "idle", stalled: "stalled", memory: "memory", overdue: "overdue", cost: "cost" };

const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);
const money = (x) => (x === null || x === undefined ? "–" : x > 0 && x < 0.01 ? "<$0.01" : `$${x.toFixed(2)}`);
const hrs = (x) => (x === null || x === undefined ? "–" : fmtNumber(x, 3));

function markBadges(marks) {
  return (marks || []).map((m) => h("span", { class: "badge mark", "data-testid": `mark-${m}` }, MARKS[m] || m));
}

function alertsTable(alerts, testid) {
  return table(
    [
      { label: "Rule", cell: (a) => h("span", { class: "badge mark" }, a.rule) },
      { label: "About", cell: (a) => (a.job_id ? h("a", { href: `#/jobs/${a.job_id}` }, a.subject) : a.subject) },
      { label: "Since", cell: (a) => timeCell(a.opened_at) },
      { label: "Seen", class: "num", cell: (a) => `${a.count}×` },
      { label: "State", cell: (a) => (a.open ? "open" : `closed${a.acted ? ` (${a.acted})` : ""}`) },
      { label: "Message", class: "reason", cell: (a) => a.message },
    ],
    alerts,
    { testid, empty: "No open alerts.", rowTestid: (a) => `alert-${a.id}` },
  );
}

// ---- the Monitor page -----------------------------------------------------------------------------

export function renderMonitor(main, { flash }) {
  const stamp = h("span", { class: "muted", "data-testid": "monitor-at" });
  const running = h("div", { class: "table-box", "data-testid": "monitor-running" }, h("p", { class: "muted" }, "Loading…"));
  const alertsBox = h("div", { class: "table-box", "data-testid": "monitor-alerts" });
  const summary = h("div", { class: "table-box", "data-testid": "monitor-week" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", null, "Monitor"), stamp),
    h("h2", null, "Running jobs"),
    running,
    h("h2", null, "Open alerts"),
    alertsBox,
    h("h2", null, "Efficiency, last 7 days"),
    summary,
  );
  const columns = [
    { label: "Job", cell: (j) => h("a", { href: `#/jobs/${j.id}`, "data-testid": "job-link" }, `${j.id} · ${j.name}`) },
    { label: "User", cell: (j) => j.user },
    { label: "Node(s)", cell: (j) => (j.nodes || []).join(", ") },
    { label: "Elapsed", class: "num", cell: (j) => fmtDuration(j.elapsed_seconds) },
    {
      label: "CPU cores",
      class: "meter-cell",
      cell: (j) => (j.cpu_cores === null ? "–" : meter(j.cpu_cores, j.cpus, `${fmtNumber(j.cpu_cores, 2)} / ${fmtNumber(j.cpus)}`)),
    },
    {
      label: "Memory",
      class: "meter-cell",
      cell: (j) =>
        j.rss_bytes === null
          ? "–"
          : j.memory_requested_bytes
            ? meter(j.rss_bytes, j.memory_requested_bytes, `${fmtBytes(j.rss_bytes)} / ${fmtBytes(j.memory_requested_bytes)}`)
            : fmtBytes(j.rss_bytes),
    },
    {
      label: "GPU",
      class: "meter-cell",
      cell: (j) => (!j.gpus ? "" : j.gpu_util === null ? `${j.gpus}× –` : meter(j.gpu_util, 1, `${j.gpus}× ${pct(j.gpu_util)}`)),
    },
    { label: "GPU mem", class: "num", cell: (j) => (j.gpu_memory_bytes === null ? "" : fmtBytes(j.gpu_memory_bytes)) },
    { label: "Cost so far", class: "num", cell: (j) => money(j.cost_usd) },
    { label: "Marks", cell: (j) => markBadges(j.marks) },
  ];
  let controller = null;
  const load = async () => {
    controller?.abort();
    controller = new AbortController();
    try {
      const doc = await api.get("/api/top", null, { signal: controller.signal });
      stamp.textContent = `as of ${new Date(doc.at).toLocaleTimeString()}`;
      replace(running, table(columns, doc.jobs || [], { testid: "top-table", empty: "No job is running.", rowTestid: (j) => `top-row-${j.id}` }));
      replace(alertsBox, alertsTable(doc.alerts || [], "alerts-table"));
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  };
  const week = new AbortController();
  (async () => {
    try {
      const doc = await api.get("/api/report", { since: "7d", limit: 0 }, { signal: week.signal });
      replace(summary, weekSummary(doc));
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  })();
  const stop = every(REFRESH_MS, load, () => controller?.abort());
  return () => {
    week.abort();
    stop();
  };
}

function weekSummary(doc) {
  const t = doc.totals;
  const line = [
    `${t.jobs} jobs`,
    `CPU efficiency ${pct(t.cpu_efficiency)} of ${hrs(t.core_hours_held)} core-hours`,
    `memory efficiency ${pct(t.memory_efficiency)}`,
    t.gpu_hours_held ? `GPU utilisation ${pct(t.gpu_utilization)} of ${hrs(t.gpu_hours_held)} GPU-hours` : null,
    `cost ${money(t.cost_usd)} (unused ${money(t.wasted_usd)})`,
  ]
    .filter(Boolean)
    .join(" · ");
  return h(
    "div",
    null,
    h("p", { "data-testid": "week-totals" }, line),
    table(
      [
        { label: "User", cell: (u) => u.user },
        { label: "Jobs", class: "num", cell: (u) => String(u.jobs) },
        { label: "Core-hours", class: "num", cell: (u) => hrs(u.core_hours_held) },
        { label: "CPU eff.", class: "num", cell: (u) => pct(u.cpu_efficiency) },
        { label: "Mem eff.", class: "num", cell: (u) => pct(u.memory_efficiency) },
        { label: "GPU-hours", class: "num", cell: (u) => hrs(u.gpu_hours_held) },
        { label: "GPU util.", class: "num", cell: (u) => pct(u.gpu_utilization) },
        { label: "Cost", class: "num", cell: (u) => money(u.cost_usd) },
        { label: "Unused", class: "num", cell: (u) => money(u.wasted_usd) },
      ],
      doc.by_user || [],
      { testid: "week-users", empty: "No job ran in the last 7 days." },
    ),
    (doc.notes || []).length ? h("ul", { class: "notes" }, doc.notes.map((n) => h("li", null, n))) : null,
  );
}

// ---- the job page's usage panel ---------------------------------------------------------------------

/**
 * The efficiency of one job (as `suanli report JOB`) and its CPU, memory and GPU use over time, read
 * again (at most every few seconds) while the job runs. Returns {el, update(job), destroy()}.
 */
export function jobUsagePanel(id, { flash }) {
  const abort = new AbortController();
  const signal = abort.signal;
  const summary = h("div", { "data-testid": "job-efficiency" }, h("p", { class: "muted" }, "No usage readings yet."));
  const notes = h("div", { "data-testid": "job-notes" });
  const alertsBox = h("div", { class: "table-box", "data-testid": "job-alerts" });
  const chartsBox = h("div", { class: "charts", "data-testid": "job-usage-charts" });
  const el = h(
    "section",
    { class: "usage-panel" },
    h("h2", null, "Efficiency"),
    h("div", { class: "columns" }, h("div", null, summary, notes), chartsBox),
    alertsBox,
  );
  const charts = new Map();
  let timer = null;
  let last = 0;
  let finalRead = false;

  const load = async () => {
    timer = null;
    last = Date.now();
    try {
      const [report, samples] = await Promise.all([
        api.get("/api/report", { job: id }, { signal }),
        api.get(`/api/jobs/${id}/samples`, null, { signal }),
      ]);
      showReport(report);
      showSeries(report, samples.series || []);
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  };

  const showReport = (r) => {
    const coreWall = r.cpus * r.wall_seconds;
    const rows = [
      ["CPU efficiency", r.cpu_efficiency === null ? null : `${pct(r.cpu_efficiency)} of ${fmtDuration(coreWall)} core-walltime (${r.cpu_source})`],
      ["CPU time", r.cpu_seconds === null ? null : fmtDuration(r.cpu_seconds)],
      ["Memory peak", r.memory_peak_bytes === null ? null : `${fmtBytes(r.memory_peak_bytes)} of ${r.memory_requested_bytes ? fmtBytes(r.memory_requested_bytes) : "no request"} (${pct(r.memory_efficiency)})`],
      ["GPU-hours", r.gpus ? `${hrs(r.gpu_hours_held)} held, ${hrs(r.gpu_hours_used)} used (${pct(r.gpu_utilization)})` : null],
      ["GPU memory peak", r.gpu_memory_peak_bytes === null ? null : fmtBytes(r.gpu_memory_peak_bytes)],
      ["Cost", r.attempts ? `${money(r.cost_usd)}${r.wasted_usd ? ` (unused ${money(r.wasted_usd)})` : ""}` : null],
      ["Energy", r.energy_kwh === null ? (r.gpus ? "not measured" : null) : `${fmtNumber(r.energy_kwh, 3)} kWh`],
    ];
    if (rows.some(([, v]) => v !== null)) replace(summary, facts(rows, "efficiency-facts"));
    replace(notes, (r.notes || []).length ? h("ul", { class: "notes" }, r.notes.map((n) => h("li", { "data-testid": "job-note" }, n))) : null);
    const open = (r.alerts || []).filter((a) => a.open);
    replace(alertsBox, (r.alerts || []).length ? [h("h2", null, `Alerts (${open.length} open)`), alertsTable(r.alerts, "job-alerts-table")] : null);
  };

  const showSeries = (r, series) => {
    if (!series.length) return;
    const x = series.map((p) => p.at);
    const specs = [
      ["cpu", "CPU cores", [{ label: "used", values: series.map((p) => p.cpu_cores) }, { label: "requested", values: series.map(() => r.cpus), color: "#999" }]],
      [
        "memory",
        "Memory (GiB)",
        [
          { label: "used", values: series.map((p) => p.rss_bytes / 2 ** 30) },
          ...(r.memory_requested_bytes ? [{ label: "requested", values: series.map(() => r.memory_requested_bytes / 2 ** 30), color: "#999" }] : []),
        ],
      ],
    ];
    if (r.gpus || series.some((p) => p.gpu_util !== null)) {
      specs.push(["gpu", "GPU utilisation (%)", [{ label: "GPU", values: series.map((p) => (p.gpu_util === null ? null : 100 * p.gpu_util)) }]]);
    }
    for (const [key, title, data] of specs) {
      const chart = charts.get(key);
      if (chart) {
        chart.update(x, data);
      } else {
        const made = lineChart({ title, x, series: data, time: true, height: 140, testid: `usage-${key}`, zero: true });
        charts.set(key, made);
        chartsBox.appendChild(made.el);
      }
    }
  };

  return {
    el,
    /** The job's record changed (or was polled): read again, at most every few seconds while it runs. */
    update(job) {
      if (finalRead || (job.status === "PENDING" && !(job.attempts || []).length)) return;
      const ended = ["SUCCEEDED", "FAILED", "CANCELLED"].includes(job.status);
      if (ended) {
        // One last read with the final usage (the kernel's rusage, stored just after the job ends).
        finalRead = true;
        clearTimeout(timer);
        timer = setTimeout(load, FINAL_READ_MS);
        return;
      }
      // A long job's history is long: read it less often as the job ages (every 5 s to every minute).
      const age = job.started_at ? Date.now() - new Date(job.started_at).getTime() : 0;
      const every = Math.min(PANEL_MAX_MS, Math.max(PANEL_MIN_MS, age / 60));
      if (timer === null) timer = setTimeout(load, Math.max(0, last + every - Date.now()));
    },
    destroy() {
      abort.abort();
      clearTimeout(timer);
      for (const chart of charts.values()) chart.destroy();
    },
  };
}
