/**
 * The admin listener's status page (served at / with page.css; no build step,
 * nothing fetched from outside). Its data is src/stack/status.ts's contract:
 *   GET events   server-sent events: `snapshot` (EventsSnapshot) on connect,
 *                then `update` (EventsUpdate) every second;
 *   GET status   the StackStatus alone, polled while the feed is down;
 *   POST reload|restart|scale?app=NAME[&n=N|+1|-1], same-origin (the server refuses writes from other sites).
 * URLs are relative to the page, so it also works mounted under a prefix.
 *
 * Everything is drawn with DOM APIs and textContent, never innerHTML: app
 * names, routes and request URLs come from the config and from clients.
 * Elements are created once per app/worker and updated in place each second,
 * so focus, a pending button and screen readers' places survive updates.
 */

/** How much of the rate/latency series the plots keep and show. */
const WINDOW_MS = 5 * 60_000;
/** Delay before opening a new feed when the browser gave up on one (EventSource retries by itself otherwise). */
const RECONNECT_MS = 3_000;
/** While the feed is down, GET status this often so that the numbers do not freeze if only the feed is broken. */
const FALLBACK_POLL_MS = 5_000;

/** Worker states and health as words with a symbol, so that nothing depends on colour. */
const STATE_LABEL = {
  ready: "● ready",
  starting: "◌ starting",
  stopping: "◌ stopping",
  stopped: "○ stopped",
  down: "✕ down",
  errored: "✕ errored",
};
const HEALTH_LABEL = { passing: "✓ passing", failing: "✗ failing", unchecked: "– unchecked" };
const CONNECTION_LABEL = { connecting: "◌ connecting…", live: "● live", disconnected: "✕ disconnected – retrying…" };
const ACTION_VERB = { reload: "Reload", restart: "Restart", scale: "Scale" };

const page = {
  /** @type {any} the last StackStatus drawn */
  status: null,
  /** @type {Array<{t: number, apps: Record<string, {rate: number, p50Ms: number, p95Ms: number, errors: number}>}>} */
  points: [],
  /** Apps with an action in flight: their buttons stay disabled until it answers. */
  pending: new Set(),
  /** One section per app, kept across updates. @type {Map<string, HTMLElement>} */
  sections: new Map(),
  /** JSON of what each list last drew, to leave unchanged lists alone. */
  drawn: new Map(),
};

// ---------------------------------------------------------------- DOM helpers

/** An element with attributes (`text` sets textContent) and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== undefined && child !== null));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svgElement(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

/** Sets an element's text only when it changed (no needless DOM mutations every second). */
function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

/** `node`'s field `name` (its [data-field] descendant). */
const field = (node, name) => node.querySelector(`[data-field="${name}"]`);

/** Redraws a list only when its data changed since the last draw. */
function changed(key, data) {
  const json = JSON.stringify(data);
  if (page.drawn.get(key) === json) return false;
  page.drawn.set(key, json);
  return true;
}

// ---------------------------------------------------------------- formatting

function duration(ms) {
  if (!(ms > 0)) return "–";
  const sec = Math.floor(ms / 1000);
  if (sec < 60) return `${sec}s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min}m ${sec % 60}s`;
  const hours = Math.floor(min / 60);
  if (hours < 24) return `${hours}h ${min % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

const mib = (bytes) => (bytes > 0 ? `${(bytes / 1048576).toFixed(1)} MiB` : "–");
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "");
const rate = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} req/s`;
const ms = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// ---------------------------------------------------------------- the feed

let source = null;
let fallbackTimer = null;

function connect() {
  // Same origin: the browser sends the admin token (Basic auth) with it as with the page.
  source = new EventSource("events");
  source.addEventListener("snapshot", (event) => {
    const { status, series } = JSON.parse(event.data);
    page.points = series.points.slice();
    trimPoints();
    stopFallback();
    setConnection("live");
    render(status);
  });
  source.addEventListener("update", (event) => {
    const { status, point } = JSON.parse(event.data);
    page.points.push(point);
    trimPoints();
    setConnection("live");
    render(status);
  });
  source.addEventListener("error", () => {
    setConnection("disconnected");
    startFallback();
    // CLOSED: the browser will not retry by itself (an answer that was not an
    // event stream: a 401, a 502 from something in between). Open a new one.
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      setTimeout(connect, RECONNECT_MS);
    }
  });
}

function trimPoints() {
  const newest = page.points.at(-1)?.t ?? 0;
  const first = page.points.findIndex((point) => point.t > newest - WINDOW_MS);
  if (first > 0) page.points.splice(0, first);
}

function startFallback() {
  fallbackTimer ??= setInterval(pollStatus, FALLBACK_POLL_MS);
}

function stopFallback() {
  clearInterval(fallbackTimer);
  fallbackTimer = null;
}

async function pollStatus() {
  try {
    const res = await fetch("status", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.ok) render(await res.json());
  } catch {
    // The admin listener is down too: the header says so already.
  }
}

/** Shows the feed's state; only a change is written (and so announced by the aria-live region). */
function setConnection(state) {
  const node = document.getElementById("connection");
  if (node.dataset.state === state && node.textContent === CONNECTION_LABEL[state]) return;
  node.dataset.state = state;
  document.body.dataset.connection = state;
  node.textContent = CONNECTION_LABEL[state];
  node.title = `${state} since ${new Date().toLocaleTimeString([], { hour12: false })}`;
}

// ---------------------------------------------------------------- rendering

function render(status) {
  page.status = status;
  renderStack(status);
  renderAlerts(status);
  renderApps(status);
  renderErrors(status.recentErrors ?? []);
  renderActivity(status.activity ?? []);
  renderProxies(status.proxies ?? []);
}

function renderStack(status) {
  setText(document.getElementById("stack-state"), status.state);
  document.getElementById("stack-state").dataset.state = status.state;
  const facts = [
    ["pid", String(status.pid)],
    ["up", duration(Date.now() - Date.parse(status.startedAt))],
    ["listening", [...status.listen, ...(status.listenTls ?? []).map((address) => `${address} (TLS)`)].join(", ")],
    ["config", status.configFile],
    ["updated", time(new Date().toISOString())],
  ];
  const list = document.getElementById("stack");
  if (list.children.length !== facts.length) {
    list.replaceChildren(...facts.map(([name]) => h("div", {}, h("dt", { text: name }), h("dd", { "data-field": name }))));
  }
  for (const [name, value] of facts) setText(field(list, name), value);
}

/** Config and reload errors, halted pools and lost log lines: what must not go unnoticed. */
function renderAlerts(status) {
  if (!changed("alerts", [status.configErrors, status.reloadErrors, status.pools?.map((pool) => pool.error), status.logWrites])) return;
  const alerts = [];
  if (status.configErrors?.length) {
    alerts.push(
      h(
        "div",
        { class: "alert", "data-alert": "config" },
        h("h3", { text: `✗ The config file has ${plural(status.configErrors.length, "error")}: not applied, the stack runs the previous one` }),
        h("ul", {}, ...status.configErrors.map((error) => h("li", { text: error }))),
      ),
    );
  }
  for (const [app, failed] of Object.entries(status.reloadErrors ?? {})) {
    alerts.push(
      h(
        "div",
        { class: "alert", "data-alert": "reload", "data-app": app },
        h("h3", { text: `✗ Reload of ${app} failed at ${time(failed.at)}: the previous workers still serve` }),
        h("p", { text: failed.message }),
        failed.frame ? h("pre", { text: failed.frame }) : null,
      ),
    );
  }
  for (const pool of status.pools ?? []) {
    if (pool.state === "errored" && pool.error) {
      alerts.push(
        h(
          "div",
          { class: "alert", "data-alert": "halted", "data-app": pool.app },
          h("h3", { text: `✗ ${pool.app} is halted` }),
          h("p", { text: pool.error.message }),
          pool.error.stderr?.length ? h("pre", { text: pool.error.stderr.join("\n") }) : null,
        ),
      );
    }
  }
  for (const [log, writes] of Object.entries(status.logWrites ?? {})) {
    if (writes.dropped > 0) {
      const why = writes.lastError ? `: ${writes.lastError.code} ${writes.lastError.message}` : "";
      alerts.push(h("div", { class: "alert", "data-alert": "log" }, h("h3", { text: `✗ ${plural(writes.dropped, `${log} log line`)} lost${why}` })));
    }
  }
  const box = document.getElementById("alerts");
  box.replaceChildren(...alerts);
  box.hidden = alerts.length === 0;
}

function renderApps(status) {
  const box = document.getElementById("apps");
  const names = new Set(status.apps.map((app) => app.app));
  for (const [name, section] of page.sections) {
    if (!names.has(name)) {
      section.remove();
      page.sections.delete(name);
    }
  }
  status.apps.forEach((app, index) => {
    let section = page.sections.get(app.app);
    if (!section || section.dataset.kind !== app.kind) {
      const fresh = appSection(app);
      if (section) section.replaceWith(fresh);
      section = fresh;
      page.sections.set(app.app, section);
    }
    placeAt(box, section, index); // the config's order
    updateApp(section, app, status);
  });
}

/**
 * Puts `node` at `index` among `parent`'s children, leaving it alone when it
 * is there already: moving a node blurs a focused button inside it, and the
 * page redraws every second.
 */
function placeAt(parent, node, index) {
  const current = parent.children[index] ?? null;
  if (current !== node) parent.insertBefore(node, current);
}

/** An app's section: what it is, its numbers, plots, buttons and workers. */
function appSection(app) {
  const name = app.app;
  // A static or redirect app is the proxy's own: no pool, no workers.
  const served = app.kind !== "static" && app.kind !== "redirect";
  const section = h(
    "section",
    { class: "app", "data-app-section": name, "data-kind": app.kind, "aria-labelledby": `app-${name}` },
    h(
      "header",
      {},
      h("h3", { id: `app-${name}`, text: name }),
      h("span", { class: "tag", "data-field": "kind", text: app.kind }),
      served ? h("span", { class: "tag", "data-field": "pool-state" }) : null,
    ),
    h("p", { class: "routes", "data-field": "routes" }),
    served ? h("p", { "data-field": "instances" }) : h("p", { "data-field": "folder" }),
    h("p", { "data-field": "traffic" }),
    h("div", { class: "plots" }, plot("rate"), plot("latency")),
  );
  if (served) {
    section.append(
      h(
        "div",
        { class: "actions", role: "group", "aria-label": `Actions for ${name}` },
        button(name, "reload", "Reload", `Reload ${name}: re-read the config, then replace its workers one at a time`),
        button(name, "restart", "Restart", `Restart ${name}'s workers one at a time`),
        h("span", { class: "scale-label", "aria-hidden": "true", text: "Scale" }),
        button(name, "scale", "−", `Scale ${name} down by one worker`, "-1"),
        button(name, "scale", "+", `Scale ${name} up by one worker`, "+1"),
      ),
      h("p", { class: "outcome", "data-field": "outcome", "data-app-outcome": name, role: "status", "aria-live": "polite" }),
      h(
        "div",
        { class: "table-box" },
        h(
          "table",
          { class: "cards workers", "aria-label": `${name} workers` },
          h("thead", {}, h("tr", {}, ...WORKER_COLUMNS.map(([, label]) => h("th", { scope: "col", text: label })))),
          h("tbody"),
        ),
      ),
    );
  }
  return section;
}

function button(app, action, text, label, n) {
  const node = h("button", { type: "button", "data-action": action, "data-app": app, "data-n": n, "aria-label": label, title: label, text });
  node.addEventListener("click", () => act(action, app, n, node));
  return node;
}

function updateApp(section, app, status) {
  const name = app.app;
  setText(field(section, "routes"), app.routes.length ? `routes: ${app.routes.join(", ")}` : "no routes");
  if (app.kind === "static") setText(field(section, "folder"), `folder: ${app.folder ?? "–"}`);
  const traffic = status.traffic?.find((entry) => entry.app === name);
  setText(
    field(section, "traffic"),
    traffic ? `${plural(traffic.requests, "request")}, ${plural(traffic.errors, "error")} · ${rate(traffic.rate)} · p50 ${ms(traffic.p50Ms)} · p95 ${ms(traffic.p95Ms)}` : "no traffic yet",
  );
  updatePlots(section, name);
  if (app.kind === "static" || app.kind === "redirect") return;

  const pool = status.pools.find((entry) => entry.app === name);
  const poolState = field(section, "pool-state");
  setText(poolState, pool ? pool.state : "no pool");
  poolState.dataset.state = pool?.state ?? "";
  setText(
    field(section, "instances"),
    pool
      ? `${pool.instances} running of ${pool.configured} configured · ${pool.ready} ready · ${pool.inPool} in pool` +
          (pool.instances !== pool.configured ? " (scaled at runtime: a reload keeps it; scale, or the next up, returns to the file's)" : "")
      : "",
  );
  const pending = page.pending.has(name);
  for (const node of section.querySelectorAll("button[data-action]")) {
    // One worker is the least a pool runs: − would only be refused.
    node.disabled = pending || (node.dataset.n === "-1" && (pool?.instances ?? 0) <= 1);
  }
  section.querySelector(".actions").setAttribute("aria-busy", String(pending));
  updateWorkers(section.querySelector("tbody"), status.workers.filter((worker) => worker.app === name));
}

// ---------------------------------------------------------------- workers

/** [data-field, column label, cell text]. */
const WORKER_COLUMNS = [
  ["worker", "worker", (w) => `${w.app}.${w.slot}`],
  ["pid", "pid", (w) => (w.pid > 0 ? String(w.pid) : "–")],
  // A worker that is not ready says why there, where a phone shows it too (no tooltips on touch).
  ["state", "state", (w) => `${STATE_LABEL[w.state] ?? w.state}${w.state !== "ready" && w.lastError ? `: ${w.lastError}` : ""}`],
  ["health", "health", (w) => HEALTH_LABEL[w.health] ?? w.health],
  ["pool", "pool", (w) => (w.inPool ? "✓ in pool" : `✗ out${w.outReason ? `: ${w.outReason}` : ""}`)],
  ["restarts", "restarts", (w) => String(w.restarts)],
  ["memory", "memory", (w) => mib(w.memory)],
  ["cpu", "cpu", (w) => `${w.cpu}%`],
  ["uptime", "uptime", (w) => duration(w.uptime)],
  ["inFlight", "in flight", (w) => String(w.inFlight)],
  ["requests", "requests", (w) => String(w.requests)],
  ["errors", "errors", (w) => String(w.errors)],
];

function updateWorkers(tbody, workers) {
  const keep = new Set(workers.map((worker) => `${worker.app}.${worker.slot}`));
  for (const row of [...tbody.rows]) if (!keep.has(row.dataset.worker)) row.remove();
  workers.sort((a, b) => a.slot - b.slot).forEach((worker, index) => {
    const key = `${worker.app}.${worker.slot}`;
    let row = tbody.querySelector(`tr[data-worker="${CSS.escape(key)}"]`);
    if (!row) {
      row = h("tr", { "data-worker": key }, ...WORKER_COLUMNS.map(([name, label]) => h(name === "worker" ? "th" : "td", { "data-field": name, "data-label": label, scope: name === "worker" ? "row" : undefined })));
    }
    placeAt(tbody, row, index); // slot order
    row.dataset.state = worker.state;
    row.dataset.health = worker.health;
    row.dataset.inPool = String(worker.inPool);
    for (const [name, , text] of WORKER_COLUMNS) setText(field(row, name), text(worker));
    // The slot's last error and health check also ride as a tooltip (a ready worker's old error included).
    row.title = [worker.lastError, worker.lastHealthCheck ? `last health check ${time(worker.lastHealthCheck)}` : ""].filter(Boolean).join(" · ");
  });
}

// ---------------------------------------------------------------- plots

const PLOT_W = 300;
const PLOT_H = 60;

/**
 * An empty plot: rate has one line; latency two (p95 dashed, so the two
 * differ without colour). The caption says the numbers in words; the drawing
 * is hidden from screen readers, which read the caption.
 */
function plot(kind) {
  const lines = kind === "rate" ? ["rate"] : ["p50", "p95"];
  const graphic = svgElement("svg", { viewBox: `0 0 ${PLOT_W} ${PLOT_H}`, preserveAspectRatio: "none", "aria-hidden": "true", class: "plot" });
  graphic.append(svgElement("line", { x1: 0, y1: PLOT_H - 0.5, x2: PLOT_W, y2: PLOT_H - 0.5, class: "axis" }));
  for (const line of lines) graphic.append(svgElement("polyline", { class: `line ${line}`, "data-line": line, points: "" }));
  return h("figure", { "data-plot": kind }, graphic, h("figcaption", { "data-field": `${kind}-caption` }));
}

function updatePlots(section, app) {
  const points = page.points;
  const newest = points.at(-1)?.t ?? Date.now();
  const value = (point, key) => point.apps[app]?.[key] ?? 0;
  const draw = (figure, series, format, caption) => {
    const peak = Math.max(0, ...series.flatMap(({ values }) => values));
    const top = peak || 1; // an idle app's flat line sits on the axis
    for (const { key, values } of series) {
      const coords = points.map((point, i) => {
        const x = ((point.t - (newest - WINDOW_MS)) / WINDOW_MS) * PLOT_W;
        const y = PLOT_H - 1 - (values[i] / top) * (PLOT_H - 4);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      figure.querySelector(`[data-line="${key}"]`).setAttribute("points", coords.join(" "));
    }
    const text = `${caption}, last ${Math.round(WINDOW_MS / 60_000)} min · peak ${format(peak)}`;
    setText(figure.querySelector("figcaption"), text);
  };
  const last = points.at(-1);
  draw(
    section.querySelector('[data-plot="rate"]'),
    [{ key: "rate", values: points.map((point) => value(point, "rate")) }],
    rate,
    `rate now ${rate(last ? value(last, "rate") : 0)}`,
  );
  draw(
    section.querySelector('[data-plot="latency"]'),
    [
      { key: "p50", values: points.map((point) => value(point, "p50Ms")) },
      { key: "p95", values: points.map((point) => value(point, "p95Ms")) },
    ],
    ms,
    `latency p50 ${ms(last ? value(last, "p50Ms") : 0)} (solid) · p95 ${ms(last ? value(last, "p95Ms") : 0)} (dashed)`,
  );
}

// ---------------------------------------------------------------- lists

function renderErrors(errors) {
  if (!changed("errors", errors)) return;
  const table = document.getElementById("errors");
  table.hidden = errors.length === 0;
  document.getElementById("errors-empty").hidden = errors.length > 0;
  const cell = (name, text, label = name) => h("td", { "data-field": name, "data-label": label, text });
  table.tBodies[0].replaceChildren(
    ...errors
      .slice()
      .reverse() // newest first
      .map((error) =>
        h(
          "tr",
          { "data-error": error.requestId },
          cell("time", time(error.at)),
          cell("app", error.app ?? "–"),
          cell("status", String(error.status)),
          cell("request", `${error.method} ${error.url}`),
          cell("worker", error.worker ?? "–"),
          cell("code", error.code ?? "–"),
          cell("requestId", error.requestId, "request id"),
        ),
      ),
  );
}

function renderActivity(entries) {
  if (!changed("activity", entries)) return;
  document.getElementById("activity-empty").hidden = entries.length > 0;
  document.getElementById("activity").replaceChildren(
    ...entries
      .slice()
      .reverse() // newest first
      .map((entry) =>
        h(
          "li",
          { "data-activity": entry.kind, "data-ok": String(entry.ok), "data-app": entry.app },
          h("time", { datetime: entry.at, text: time(entry.at) }),
          h("span", { class: "outcome-mark", "aria-hidden": "true", text: entry.ok ? "✓" : "✗" }),
          h("span", { class: "visually-hidden", text: entry.ok ? "succeeded:" : "failed:" }),
          h("span", { class: "tag", text: entry.kind }),
          entry.app ? h("strong", { text: entry.app }) : null,
          h("span", { class: "message", text: entry.message }),
        ),
      ),
  );
}

function renderProxies(proxies) {
  if (!changed("proxies", proxies)) return;
  const cell = (name, text, label = name) => h("td", { "data-field": name, "data-label": label, text });
  document.getElementById("proxies").tBodies[0].replaceChildren(
    ...proxies.map((proxy) =>
      h(
        "tr",
        { "data-proxy": proxy.index },
        cell("index", String(proxy.index), "#"),
        cell("pid", String(proxy.pid)),
        cell("state", STATE_LABEL[proxy.state] ?? proxy.state),
        cell("restarts", String(proxy.restarts)),
        cell("since", time(proxy.since)),
      ),
    ),
  );
}

// ---------------------------------------------------------------- actions

/**
 * POSTs an action, its app's buttons disabled until the answer, which is
 * shown (and announced) beside them. Disabling the pressed button drops the
 * keyboard focus to the page; it is given back once the answer is in.
 */
async function act(action, app, n, trigger) {
  if (page.pending.has(app)) return;
  const section = page.sections.get(app);
  const outcome = section && field(section, "outcome");
  page.pending.add(app);
  refreshApp(app);
  showOutcome(outcome, "pending", `${ACTION_VERB[action]} ${app}${n ? ` ${n}` : ""}…`);
  const query = new URLSearchParams({ app });
  if (n) query.set("n", n); // URLSearchParams encodes "+1" as %2B1, not as a space
  let result;
  try {
    const res = await fetch(`${action}?${query}`, { method: "POST", credentials: "same-origin" });
    const text = await res.text();
    let body;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = res.ok ? {} : { error: text.trim() || res.statusText }; // a proxy's HTML error page, say
    }
    result = describe(action, app, res, body);
  } catch (error) {
    result = { ok: false, text: `${ACTION_VERB[action]} ${app} failed: the admin server did not answer (${error.message})` };
  } finally {
    page.pending.delete(app);
    refreshApp(app);
  }
  showOutcome(outcome, result.ok ? "ok" : "error", result.text);
  if (trigger?.isConnected && (document.activeElement === document.body || document.activeElement === null)) trigger.focus();
}

/** Redraws one app's section now (its buttons' pending state), when it is still in the config. */
function refreshApp(app) {
  const entry = page.status?.apps.find((candidate) => candidate.app === app);
  const section = page.sections.get(app);
  if (entry && section) updateApp(section, entry, page.status);
}

/**
 * One line for the answer: the server's error text, or what was done. The
 * answers are the control API's (stack/control.ts): reload a ReloadOutcome,
 * restart `{ restarted, pools }`, scale `{ app, instances, pool }`. A 200 can
 * still say it did not work — an invalid config file, a roll that failed, a
 * pool short of ready workers — and that is shown as a failure, as the CLI does.
 */
function describe(action, app, res, body) {
  const verb = ACTION_VERB[action];
  if (!res.ok || body.error) {
    const error = typeof body.error === "string" ? body.error : body.error?.message ?? `${res.status} ${res.statusText}`;
    return { ok: false, text: `${verb} ${app} failed: ${error}${body.code ? ` (${body.code})` : ""}` };
  }
  const done = [];
  const problems = [];
  if (body.config === "invalid") problems.push(`the config file has errors, nothing was changed: ${(body.configErrors ?? []).join("; ")}`);
  for (const change of body.changes ?? []) done.push(`config: ${change}`);
  for (const report of body.reloads ?? []) {
    if (report.ok) done.push(`${plural(report.replaced, "worker")} replaced in ${(report.ms / 1000).toFixed(1)} s`);
    else problems.push(`${report.app}: ${report.error?.message ?? "the reload failed"}; the running workers keep serving`);
  }
  for (const pool of [...(body.pools ?? []), ...(body.pool ? [body.pool] : [])]) {
    const ready = `${pool.ready} of ${plural(pool.instances, "worker")} ready`;
    if (pool.error !== undefined || pool.ready < pool.instances) problems.push(`${pool.app}: ${ready}${pool.error ? `: ${pool.error}` : ""}`);
    else done.push(ready);
  }
  if (problems.length) return { ok: false, text: `${verb} ${app} failed: ${problems.join("; ")}` };
  return { ok: true, text: `${verb} ${app}: done${done.length ? `, ${done.join(", ")}` : ""}` };
}

function showOutcome(node, state, text) {
  if (!node) return;
  node.dataset.outcome = state;
  const mark = state === "ok" ? "✓ " : state === "error" ? "✗ " : "";
  const at = state === "pending" ? "" : ` (${time(new Date().toISOString())})`;
  node.textContent = `${mark}${text}${at}`;
}

// ---------------------------------------------------------------- start

setConnection("connecting");
connect();
