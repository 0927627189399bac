// The chainsim event-bus dashboard: the live stream (/api/event-bus/stream) with filters, pause and reconnection,
// the statistics, one chain instance's events, and the generator's start/stop. Plain ES module, no dependencies.
// Event data is untrusted: it reaches the DOM only through textContent and attributes, never as HTML.

const API = new URL("api/event-bus/", document.baseURI);
const MAX_ROWS = 500;
const REFRESH_MS = 2000;
const FLUSH_MS = 100;
const $ = (id) => document.getElementById(id);

const state = {
  filters: {},          // event_type / chain / tenant_id as sent to the server
  socket: null,
  generation: 0,        // bumped on every (re)connection: late callbacks of an old socket are ignored
  lastEventId: null,    // the reconnection's ?since=
  retry: 0,
  retryTimer: null,
  paused: false,
  held: [],             // events received while paused (the newest MAX_ROWS), shown on resume
  pending: [],          // events waiting for the next flush
  flushTimer: 0,
  received: 0,
  heldCount: 0,
  dropped: 0,
  selected: null,       // correlation id shown in the detail panel
  detailRequest: 0,
  runShown: false,      // Start's fields were filled from the generator's settings once
};

// -- DOM helpers: text only -------------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function setText(id, value) {
  $(id).textContent = value === undefined || value === null ? "–" : String(value);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

const number = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");
const rate = (n) => (typeof n === "number" ? n.toFixed(1) : "–");
const shortId = (id) => String(id ?? "").slice(0, 8);
const clock = (timestamp) => String(timestamp ?? "").slice(11, 23);  // HH:MM:SS.mmm of the RFC 3339 text

function millis(ms) {
  if (typeof ms !== "number") return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// -- HTTP -------------------------------------------------------------------------------------------------------

class ApiError extends Error {}

async function api(path, options = {}) {
  const response = await fetch(new URL(path, API), options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error;
    const message = error && error.message ? error.message : `${response.status} ${response.statusText}`;
    const where = error && error.parameter ? `${error.parameter}: ` : "";
    const allowed = error && error.allowed ? ` (allowed: ${error.allowed})` : "";
    throw new ApiError(`${where}${message}${allowed}`);
  }
  return body;
}

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...state.filters, ...extra })) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  return params;
}

// -- the stream -------------------------------------------------------------------------------------------------

function setConnection(status, detail = "") {
  const badge = $("connection");
  badge.dataset.state = status;
  badge.textContent = detail ? `${status} (${detail})` : status;
}

function connect() {
  clearTimeout(state.retryTimer);
  const generation = ++state.generation;
  const url = new URL("stream", API);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = query(state.lastEventId ? { since: state.lastEventId } : {}).toString();
  const socket = new WebSocket(url);
  let opened = false;
  state.socket = socket;
  socket.onopen = () => {
    if (generation !== state.generation) return;
    opened = true;
    state.retry = 0;
    setConnection("connected");
  };
  socket.onmessage = (message) => {
    if (generation === state.generation) receive(JSON.parse(message.data));
  };
  socket.onclose = async (close) => {
    if (generation !== state.generation) return;
    state.socket = null;
    const refusal = close.code === 1008 ? refused(close.reason) : null;
    if (refusal && refusal.parameter !== "since") {
      setConnection("disconnected");  // the server refused these filters: retrying would not help
      showError(refusal.message);
      return;
    }
    // A server that answers but will not resume after our last event (restarted on another store): go live.
    if (state.lastEventId && (refusal || (!opened && await serverUp()))) {
      if (generation !== state.generation) return;
      state.lastEventId = null;
      note("could not resume after the last event received: live events from now on");
    }
    const delay = refusal ? 0 : Math.min(5000, 250 * 2 ** state.retry++);
    const why = close.reason && !refusal ? close.reason : `in ${(delay / 1000).toFixed(1)} s`;
    setConnection("reconnecting", why);
    state.retryTimer = setTimeout(connect, delay);
  };
}

// The error of a 1008 close: its reason is the start of the API's JSON error body (cut at 120 bytes), or text.
function refused(reason) {
  const parameter = /"parameter":\s*"([^"]*)"/.exec(reason || "");
  const message = /"message":\s*"((?:[^"\\]|\\.)*)/.exec(reason || "");
  if (!parameter) return { parameter: null, message: reason || "the server refused the stream" };
  return { parameter: parameter[1], message: `${parameter[1]}: ${message ? message[1] : reason}` };
}

async function serverUp() {
  try {
    return (await fetch(new URL("healthz", API))).ok;
  } catch {
    return false;
  }
}

function note(text) {
  state.pending.push({ note: text });
  schedule();
}

function disconnect() {
  state.generation++;
  clearTimeout(state.retryTimer);
  if (state.socket) state.socket.close(1000, "filters changed");
  state.socket = null;
}

// The newest stored events first, so a page opened late (or after the run) is not empty; then live from the newest.
async function start() {
  disconnect();
  const generation = state.generation;  // a later start (filters applied again) makes this one stale
  setConnection("connecting");
  try {
    const page = await api(`events?${query({ limit: 100 })}`);
    if (generation !== state.generation) return;
    const events = page.events || [];
    if (events.length) state.lastEventId = events[0].event_id;
    state.pending.push(...events.slice().reverse());
    schedule();
  } catch (error) {
    if (generation !== state.generation) return;
    if (error instanceof ApiError) {
      setConnection("disconnected");
      showError(error.message);
      return;
    }
    // the server is not reachable yet: the stream's own reconnection takes over
  }
  connect();
}

function receive(message) {
  if (message && typeof message === "object" && "control" in message) {
    if (message.control === "dropped") {
      const count = Number(message.count) || 0;
      state.dropped += count;
      note(`${number(count)} events dropped (too slow)`);  // where in the list; the badge keeps the total
    }
    return;
  }
  state.received++;
  state.lastEventId = message.event_id;
  if (state.paused) {
    state.heldCount++;
    state.held.push(message);
    if (state.held.length > MAX_ROWS) state.held.shift();
    schedule();  // the counts
    return;
  }
  state.pending.push(message);
  if (state.pending.length > MAX_ROWS) state.pending.splice(0, state.pending.length - MAX_ROWS);
  schedule();
}

// Rows are added at most every FLUSH_MS (laying out the table is what costs at thousands of events a second),
// newest on top, and the list is cut at MAX_ROWS.
function schedule() {
  if (!state.flushTimer) state.flushTimer = setTimeout(flush, FLUSH_MS);
}

function flush() {
  clearTimeout(state.flushTimer);
  state.flushTimer = 0;
  const body = $("events");
  const fragment = document.createDocumentFragment();
  for (let i = state.pending.length - 1; i >= 0; i--) fragment.append(row(state.pending[i]));
  state.pending = [];
  body.prepend(fragment);
  while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
  updateCounts();
}

function row(event) {
  if ("note" in event) return el("tr", { class: "note", "data-testid": "note-row" }, el("td", { colspan: 6 }, event.note));
  const tr = el("tr", {
    "data-testid": "event-row", "data-event-id": event.event_id, "data-correlation-id": event.correlation_id,
    "data-chain": event.chain, "data-event-type": event.event_type, "data-tenant": event.tenant_id, tabindex: 0,
  },
  el("td", { class: "time", title: event.timestamp }, clock(event.timestamp)),
  el("td", { class: "type", title: event.event_type }, event.event_type),
  el("td", { title: event.chain }, event.chain),
  el("td", { title: event.step }, event.step),
  el("td", { title: event.tenant_id }, event.tenant_id),
  el("td", { class: "id", title: event.correlation_id }, shortId(event.correlation_id)));
  if (event.correlation_id === state.selected) tr.classList.add("selected");
  return tr;
}

function updateCounts() {
  const parts = [`${number(state.received)} received`, `${number($("events").childElementCount)} rows`];
  if (state.paused) parts.push(`paused: ${number(state.heldCount)} new`);
  $("counts").textContent = parts.join(" · ");
  $("dropped").hidden = !state.dropped;
  $("dropped").textContent = `${number(state.dropped)} events dropped (too slow)`;
}

function togglePause() {
  state.paused = !state.paused;
  if (state.paused) flush();  // what came before the click is shown, nothing after
  const button = $("pause");
  button.textContent = state.paused ? "Resume" : "Pause";
  button.setAttribute("aria-pressed", String(state.paused));
  if (!state.paused) {
    state.pending.push(...state.held);
    state.held = [];
    state.heldCount = 0;
    schedule();
  }
  updateCounts();
}

function applyFilters(event) {
  if (event) event.preventDefault();
  clearError();
  state.filters = {
    event_type: $("filter-event-type").value.trim(),
    chain: $("filter-chain").value,
    tenant_id: $("filter-tenant").value.trim(),
  };
  state.lastEventId = null;
  state.pending = [];
  state.held = [];
  state.heldCount = 0;
  $("events").replaceChildren();
  start();
}

// -- catalog, statistics, generator ------------------------------------------------------------------------------

async function loadCatalog() {
  const catalog = await api("catalog");
  const select = $("filter-chain");
  for (const chain of catalog.chains || []) {
    const share = typeof chain.share === "number" ? ` (${chain.share.toFixed(1)}%)` : "";
    select.append(el("option", { value: chain.name }, `${chain.name}${share}`));
  }
}

// Both spellings of the figures: the API contract's (total_events, p50_ms, ...) and the store's own (events, p50).
function renderStatistics(stats) {
  const eps = stats.events_per_second || {};
  setText("stat-total-events", number(stats.total_events ?? stats.events));
  setText("stat-total-chains", number(stats.total_chains ?? stats.chains));
  setText("stat-in-flight", number(stats.chains_in_flight ?? stats.in_flight));
  setText("stat-eps-1m", rate(eps.last_minute ?? eps["60s"]));
  setText("stat-eps-5m", rate(eps.last_5_minutes ?? eps["300s"]));
  setText("stat-since", stats.since);
  const byChain = stats.by_chain || {}, outcomes = stats.by_outcome || {};
  const durations = stats.durations || stats.durations_ms || {};
  const names = [...new Set([...Object.keys(byChain), ...Object.keys(outcomes), ...Object.keys(durations)])].sort();
  $("stat-chains").replaceChildren(...names.map((name) => {
    const d = durations[name] || {};
    const mix = Object.entries(outcomes[name] || {}).sort((a, b) => b[1] - a[1])
      .map(([outcome, n]) => `${outcome} ${number(n)}`).join(" · ");
    return el("tr", { "data-testid": "stat-chain", "data-chain": name },
      el("td", {}, name, el("div", { class: "mix", "data-testid": "stat-outcomes" }, mix)),
      el("td", { class: "num" }, number(byChain[name])),
      el("td", { class: "num" }, millis(d.p50_ms ?? d.p50)), el("td", { class: "num" }, millis(d.p95_ms ?? d.p95)),
      el("td", { class: "num" }, millis(d.p99_ms ?? d.p99)));
  }));
}

function renderGenerator(generator) {
  const badge = $("generator-status");
  const status = generator.running ? "running" : "stopped";
  badge.dataset.state = status;
  badge.textContent = `generator: ${status}`;
  const made = generator.generated || {};
  const since = generator.since ? `since ${clock(generator.since)} · ` : "";
  $("generator-detail").textContent = `${since}${number(made.events)} events, ${number(made.chains)} chains`;
  $("token").placeholder = generator.token_required ? "token (required)" : "token";
  const run = generator.run || {};
  if (!state.runShown && generator.running) {  // Start's fields begin as the server's own settings
    state.runShown = true;
    if (typeof run.interval_ms === "number") $("interval-ms").value = String(run.interval_ms);
    if (typeof run.initial === "number") $("initial-chains").value = String(run.initial);
  }
}

async function control(action) {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const body = action === "start" ? {
    continuous: true,
    interval_ms: Number($("interval-ms").value) || 5000,
    initial_chains: Number($("initial-chains").value) || 0,
  } : {};
  try {
    await api(`generator/${action}`, { method: "POST", headers, body: JSON.stringify(body) });
    clearError();
  } catch (error) {
    showError(`generator ${action}: ${error.message}`);
  }
  await refresh();
}

async function refresh() {
  const tasks = [
    api("statistics").then(renderStatistics),
    api("generator").then(renderGenerator),
  ];
  if (state.selected && $("detail").dataset.status === "in_flight") tasks.push(showChain(state.selected));
  for (const result of await Promise.allSettled(tasks)) {
    if (result.status === "rejected" && result.reason instanceof ApiError) showError(result.reason.message);
  }
}

// One round of requests at a time: the next is planned when this one is done.
async function refreshLoop() {
  await refresh();
  setTimeout(refreshLoop, REFRESH_MS);
}

// -- one chain instance --------------------------------------------------------------------------------------------

async function showChain(id) {
  const request = ++state.detailRequest;
  let chain;
  try {
    chain = await api(`chains/${encodeURIComponent(id)}`);
  } catch (error) {
    if (request === state.detailRequest) showError(`chain ${shortId(id)}: ${error.message}`);
    return;
  }
  if (request !== state.detailRequest || state.selected !== id) return;
  const panel = $("detail");
  panel.hidden = false;
  panel.dataset.status = chain.status;
  setText("detail-name", chain.chain);
  setText("detail-id", chain.correlation_id);
  setText("detail-status", chain.status === "in_flight" ? "in flight" : chain.status);
  setText("detail-outcome", chain.outcome ?? "–");
  const sofar = chain.status === "in_flight" && typeof chain.duration_ms === "number" ? " so far" : "";
  setText("detail-duration", `${millis(chain.duration_ms)}${sofar}`);
  const start = Date.parse(chain.start);
  $("detail-events").replaceChildren(...(chain.events || []).map((event) => el("li",
    { "data-testid": "detail-event", "data-event-id": event.event_id, "data-step": event.step },
    el("span", { class: "offset" }, `+${millis(Date.parse(event.timestamp) - start)}`),
    el("span", { class: "step" }, event.step),
    el("span", { class: "type" }, event.event_type),
    el("pre", { class: "payload", "data-testid": "detail-payload" }, JSON.stringify(event.payload, null, 2)))));
}

function select(id) {
  state.selected = id;
  for (const tr of $("events").querySelectorAll("tr.selected")) tr.classList.remove("selected");
  for (const tr of $("events").querySelectorAll("tr[data-correlation-id]")) {
    if (tr.dataset.correlationId === id) tr.classList.add("selected");
  }
  if (id) showChain(id);
  else $("detail").hidden = true;
}

// -- wiring --------------------------------------------------------------------------------------------------------

function main() {
  $("filters").addEventListener("submit", applyFilters);
  $("filter-chain").addEventListener("change", applyFilters);
  $("filters").addEventListener("reset", () => setTimeout(applyFilters));  // after the form is cleared
  $("pause").addEventListener("click", togglePause);
  $("generator-start").addEventListener("click", () => control("start"));
  $("generator-stop").addEventListener("click", () => control("stop"));
  $("detail-close").addEventListener("click", () => select(null));
  $("error").addEventListener("click", clearError);
  $("events").addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-correlation-id]");
    if (tr) select(tr.dataset.correlationId);
  });
  $("events").addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr[data-correlation-id]");
    if (tr && event.key === "Enter") select(tr.dataset.correlationId);
  });
  loadCatalog().catch((error) => showError(`catalog: ${error.message}`));
  updateCounts();
  start();
  refreshLoop();
}

main();
