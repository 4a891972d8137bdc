// One job: its record and attempts, a live log (the server's event stream), its metrics as charts,
// and Cancel / Resubmit for whoever may manage it.

import { api, streamEvents } from "../api.js";
import { lineChart } from "../charts.js";
import { jobUsagePanel } from "./monitor.js";
import {
  facts,
  fmtBytes,
  fmtDuration,
  fmtNumber,
  fmtResources,
  h,
  replace,
  statusBadge,
  table,
  timeCell,
} from "../dom.js";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);
const MAX_LOG_CHARS = 400_000; // the panel keeps the end of a long log
const LOG_TAIL_BYTES = MAX_LOG_CHARS; // ... so the stream sends no more than that of it
const POLL_MS = 4000; // the record is re-read this often while the job is live (the stream is quiet while the job prints nothing)
const METRICS_MIN_MS = 2000;

/** What the server allows (Principal.can_manage): admin; the project's admin; the job's own member. */
export function canManage(me, job) {
  if (!me) return false;
  if (me.role === "admin") return true;
  if (!me.project || me.project !== job.project) return false;
  return me.role === "project_admin" || (me.role === "member" && job.user === me.user);
}

function seconds(a, b) {
  if (!a) return null;
  const end = b ? new Date(b).getTime() : Date.now();
  return (end - new Date(a).getTime()) / 1000;
}

export function renderJob(main, { match, me, flash, go }) {
  const id = Number(match[1]);
  const abort = new AbortController();
  const signal = abort.signal;
  let job = null;
  let poll = null;
  let ended = false;

  // ---- layout ----
  const title = h("h1", null, `Job ${id}`);
  const badge = h("span");
  const actions = h("div", { class: "actions", "data-testid": "job-actions" });
  const summary = h("div", { class: "summary" });
  const attemptsBox = h("div", { class: "table-box" });
  const logState = h("span", { class: "muted", "data-testid": "log-state" }, "connecting…");
  const follow = h("input", { type: "checkbox", checked: true, "data-testid": "log-follow" });
  const logPre = h("pre", { class: "log", "data-testid": "job-log", tabindex: 0 });
  const metricsBox = h("div", { class: "charts", "data-testid": "job-metrics" }, h("p", { class: "muted" }, "No metrics yet."));
  const eventsBox = h("div", { class: "table-box" });
  const specPre = h("pre", { class: "spec", "data-testid": "job-spec" });
  const specDetails = h("details", null, h("summary", null, "Spec"), specPre);
  const usage = jobUsagePanel(id, { flash });

  main.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/jobs", class: "back" }, "‹ Jobs"), title, badge, actions),
    h("div", { class: "columns" }, h("section", null, summary), h("section", null, h("h2", null, "Metrics"), metricsBox)),
    usage.el,
    h("h2", null, "Attempts"),
    attemptsBox,
    h(
      "div",
      { class: "log-head" },
      h("h2", null, "Log"),
      logState,
      h("label", { class: "check" }, follow, "follow"),
    ),
    logPre,
    h("h2", null, "Events"),
    eventsBox,
    specDetails,
  );

  // ---- record ----
  let lastMetrics = null; // the latest values in the record: when they change, the history is read again
  const showJob = (doc) => {
    const before = job ? job.status : null;
    job = doc;
    title.textContent = `Job ${doc.id} · ${doc.name}`;
    replace(badge, statusBadge(doc.status));
    badge.firstChild.setAttribute("data-testid", "job-status");
    renderActions();
    usage.update(doc);
    const wall = doc.ended_at ? doc.wall_seconds : seconds(doc.started_at, null);
    replace(
      summary,
      facts(
        [
          ["User", doc.user],
          ["Project", doc.project],
          ["Status", doc.status],
          ["Reason", doc.reason ? h("span", { "data-testid": "job-reason" }, doc.reason) : null],
          ["Priority", String(doc.priority)],
          ["Resources", fmtResources(doc.resources, doc.num_nodes)],
          ["Nodes × workers", `${doc.num_nodes} × ${doc.num_workers}`],
          ["Retries", String(doc.retries)],
          ["Submitted", timeCell(doc.submitted_at)],
          ["Started", timeCell(doc.started_at)],
          ["Ended", timeCell(doc.ended_at)],
          ["Ran", fmtDuration(wall)],
          ["Preemptions", doc.preemptions ? String(doc.preemptions) : null],
          [
            "Latest metrics",
            Object.keys(doc.metrics || {}).length
              ? Object.entries(doc.metrics).map(([k, v]) => `${k}=${fmtNumber(v, 4)}`).join("  ")
              : null,
          ],
        ],
        "job-facts",
      ),
    );
    replace(
      attemptsBox,
      table(
        [
          { label: "#", class: "num", cell: (a) => String(a.number) },
          { label: "Node(s)", cell: (a) => (a.nodes && a.nodes.length ? a.nodes.join(", ") : a.node || "") },
          { label: "PID", class: "num", cell: (a) => (a.pid ? String(a.pid) : "") },
          { label: "Placement", cell: (a) => placement(a.placement) },
          { label: "Start", cell: (a) => timeCell(a.start) },
          { label: "End", cell: (a) => timeCell(a.end) },
          { label: "Ran", class: "num", cell: (a) => fmtDuration(seconds(a.start, a.end)) },
          { label: "Exit", class: "num", cell: (a) => (a.exit_code ?? "") + (a.signal ? ` ${a.signal}` : "") },
          { label: "Reason", class: "reason", cell: (a) => attemptReason(a) },
        ],
        doc.attempts || [],
        { testid: "attempts-table", empty: "No attempt yet." },
      ),
    );
    const metricsKey = JSON.stringify(doc.metrics || {});
    if (before && before !== doc.status) {
      loadEvents();
      if (TERMINAL.has(doc.status)) loadMetrics(true);
    }
    if (lastMetrics !== null && metricsKey !== lastMetrics) loadMetrics(false); // new points were stored
    lastMetrics = metricsKey;
  };

  const placement = (rows) =>
    (rows || [])
      .map((p) => {
        const parts = [`${fmtNumber(p.cpus)} CPU`];
        if (p.memory_bytes) parts.push(fmtBytes(p.memory_bytes));
        if (p.gpus) parts.push(`${p.gpus} GPU`);
        return `${p.node}: ${parts.join(", ")}`;
      })
      .join("; ");

  const attemptReason = (a) => {
    const reason = h("span", null, a.reason || "");
    if (!a.log_tail) return reason;
    const tail = Array.isArray(a.log_tail) ? a.log_tail.join("\n") : String(a.log_tail);
    return h("details", { class: "tail" }, h("summary", null, a.reason || "log tail"), h("pre", null, tail));
  };

  // ---- cancel / resubmit ----
  // Drawn again only when what they offer changes (the record is re-read often: a button must not be
  // replaced under the pointer, and an open "really cancel?" must stay open).
  let confirming = false;
  let cancelling = false;
  let drawn = null;
  const renderActions = () => {
    const live = Boolean(job) && !TERMINAL.has(job.status);
    const allowed = Boolean(job) && canManage(me, job);
    if (!live) confirming = cancelling = false;
    const key = `${allowed}|${live}|${confirming}|${cancelling}`;
    if (key === drawn) return;
    drawn = key;
    if (!allowed) {
      replace(actions);
      return;
    }
    if (live && confirming) {
      const yes = h("button", { type: "button", class: "danger", "data-testid": "confirm-cancel", disabled: cancelling }, cancelling ? "Cancelling…" : "Yes, cancel it");
      const no = h("button", { type: "button", class: "secondary", "data-testid": "keep-job", disabled: cancelling }, "No");
      yes.addEventListener("click", cancel);
      no.addEventListener("click", () => {
        confirming = false;
        renderActions();
      });
      replace(actions, h("span", { class: "confirm" }, `Cancel job ${id}? `), yes, no);
      return;
    }
    const buttons = [];
    if (live) {
      const ask = () => {
        confirming = true;
        renderActions();
      };
      buttons.push(h("button", { type: "button", class: "danger", "data-testid": "cancel-job", onclick: ask }, "Cancel job"));
    }
    buttons.push(h("button", { type: "button", class: "secondary", "data-testid": "resubmit-job", onclick: resubmit }, "Resubmit"));
    replace(actions, buttons);
  };

  const cancel = async () => {
    cancelling = true;
    renderActions();
    try {
      // Without ?wait the answer comes at once; a running job stops within its grace period, and
      // "Cancelling…" stays until the record says it ended.
      await api.post(`/api/jobs/${id}/cancel`, {}, { signal });
      await refresh();
    } catch (e) {
      flash(e);
      cancelling = confirming = false;
      renderActions();
    }
  };

  const resubmit = async (e) => {
    e.target.disabled = true;
    try {
      const doc = await api.post(`/api/jobs/${id}/resubmit`, {}, { signal });
      go(`#/jobs/${doc.id}`);
    } catch (err) {
      flash(err);
      e.target.disabled = false;
    }
  };

  const refresh = async () => {
    try {
      showJob(await api.get(`/api/jobs/${id}`, null, { signal }));
    } catch (e) {
      flash(e);
    }
  };

  // ---- log (server-sent events read with fetch) ----
  let logText = "";
  let pending = "";
  let frame = 0;
  const flushLog = () => {
    frame = 0;
    if (!pending) return;
    logText += pending;
    pending = "";
    if (logText.length > MAX_LOG_CHARS) {
      const cut = logText.indexOf("\n", logText.length - MAX_LOG_CHARS);
      logText = `[… earlier output not shown …]\n${logText.slice(cut + 1)}`;
      logPre.textContent = logText;
    } else if (logPre.firstChild) {
      logPre.firstChild.appendData(logText.slice(logPre.firstChild.length));
    } else {
      logPre.textContent = logText;
    }
    if (follow.checked) logPre.scrollTop = logPre.scrollHeight;
  };
  logPre.addEventListener("scroll", () => {
    const atBottom = logPre.scrollHeight - logPre.scrollTop - logPre.clientHeight < 8;
    follow.checked = atBottom;
  });
  follow.addEventListener("change", () => {
    if (follow.checked) logPre.scrollTop = logPre.scrollHeight;
  });

  const onEvent = (name, data) => {
    if (name === "log") {
      pending += typeof data === "string" ? data : data.text || "";
      if (!frame) frame = requestAnimationFrame(flushLog);
    } else if (name === "job" && data && typeof data === "object") {
      showJob(data);
    } else if (name === "end") {
      ended = true;
      logState.textContent = `ended: ${data && data.status ? data.status : ""}`;
      logState.dataset.state = "ended";
    }
  };

  const stream = async () => {
    for (let tries = 0; !signal.aborted && !ended; tries += 1) {
      logState.textContent = "live";
      logState.dataset.state = "live";
      try {
        await streamEvents(`/api/jobs/${id}/events/stream?tail_bytes=${LOG_TAIL_BYTES}`, onEvent, signal);
        if (ended) break;
      } catch (e) {
        if (signal.aborted) return;
        if (e.status === 429) {
          // Too many open streams (the server allows a few per user): the record is still polled.
          logState.textContent = `${e.message}; retrying…`;
          logState.dataset.state = "waiting";
          await new Promise((r) => setTimeout(r, Math.min(30_000, 3000 * 2 ** tries)));
          continue;
        }
        if (e.status && e.status < 500) {
          logState.textContent = "unavailable";
          logState.dataset.state = "";
          flash(e);
          return;
        }
      }
      // The connection dropped before the job ended: start over (the stream replays the log).
      logState.textContent = "reconnecting…";
      logState.dataset.state = "";
      await new Promise((r) => setTimeout(r, Math.min(10_000, 1000 * 2 ** tries)));
      if (signal.aborted) return;
      logText = "";
      pending = "";
      logPre.textContent = "";
    }
    cancelAnimationFrame(frame);
    flushLog();
    stopPolling();
  };

  // ---- metrics ----
  const charts = new Map(); // name -> chart
  let metricsAt = 0; // when the history was last asked for
  let metricsTimer = null;
  let metricsDue = Infinity; // when the pending read runs
  const loadMetrics = (now) => {
    const due = now ? Date.now() : Math.max(Date.now(), metricsAt + METRICS_MIN_MS);
    if (metricsTimer !== null && metricsDue <= due) return; // one sooner is already on its way
    clearTimeout(metricsTimer);
    metricsDue = due;
    metricsTimer = setTimeout(async () => {
      metricsTimer = null;
      metricsDue = Infinity;
      metricsAt = Date.now();
      try {
        const doc = await api.get(`/api/jobs/${id}/metrics`, null, { signal });
        showMetrics(doc.metrics || []);
      } catch (e) {
        if (e.name !== "AbortError") flash(e);
      }
    }, due - Date.now());
  };

  const showMetrics = (points) => {
    const byName = new Map();
    for (const p of points) {
      if (!byName.has(p.name)) byName.set(p.name, []);
      byName.get(p.name).push(p);
    }
    if (!byName.size) return;
    if (!charts.size) replace(metricsBox);
    for (const [name, list] of [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      const { x, values, time } = series(list);
      const data = [{ label: name, values }];
      let chart = charts.get(name);
      if (chart && chart.time !== time) {
        chart.destroy();
        chart.el.remove();
        chart = null;
      }
      if (chart) {
        chart.update(x, data);
      } else {
        chart = lineChart({
          title: name,
          x,
          series: data,
          time,
          height: 150,
          testid: `metric-${name}`,
          xLabel: time ? "time" : "step",
          integerX: !time,
          mono: true,
        });
        chart.time = time;
        charts.set(name, chart);
        metricsBox.appendChild(chart.el);
      }
    }
  };

  // ---- events and spec ----
  const loadEvents = async () => {
    try {
      const doc = await api.get(`/api/jobs/${id}/events`, null, { signal });
      replace(
        eventsBox,
        table(
          [
            { label: "At", cell: (e) => timeCell(e.at) },
            { label: "From", cell: (e) => e.from ?? "" },
            { label: "To", cell: (e) => e.to },
            { label: "Reason", class: "reason", cell: (e) => e.reason ?? "" },
          ],
          doc.events || [],
          { testid: "events-table", empty: "No events." },
        ),
      );
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  };
  specDetails.addEventListener("toggle", async () => {
    if (!specDetails.open || specPre.textContent) return;
    try {
      const doc = await api.get(`/api/jobs/${id}/spec`, null, { signal });
      specPre.textContent = JSON.stringify(doc, null, 2);
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  });

  const stopPolling = () => {
    clearInterval(poll);
    poll = null;
  };

  // ---- start ----
  (async () => {
    try {
      showJob(await api.get(`/api/jobs/${id}`, null, { signal }));
    } catch (e) {
      if (e.name === "AbortError") return;
      flash(e);
      replace(summary, h("p", { class: "muted" }, "Could not load this job."));
      logState.textContent = "";
      return;
    }
    loadEvents();
    loadMetrics(true);
    poll = setInterval(async () => {
      if (document.hidden || !job || TERMINAL.has(job.status)) return;
      await refresh();
    }, POLL_MS);
    stream();
  })();

  return () => {
    abort.abort();
    stopPolling();
    clearTimeout(metricsTimer);
    cancelAnimationFrame(frame);
    for (const chart of charts.values()) chart.destroy();
    usage.destroy();
  };
}

/** One metric's points as x (step, or time when some point has no step) and values, x ascending. */
function series(points) {
  const time = points.some((p) => p.step === null || p.step === undefined);
  const byX = new Map(); // a later point at the same x (a retried attempt) replaces the earlier one
  for (const p of points) byX.set(time ? p.at : p.step, p.value);
  const x = [...byX.keys()].sort((a, b) => a - b);
  return { x, values: x.map((k) => byX.get(k)), time };
}
