// The watch page: state rebuilt from the debate's events, rendered as text (never HTML).
import { apiFetch, getAccessToken, isSignedIn, refreshAccessToken, requireAuth, signInUrl } from "./auth.js";
import { CloseCode, DebateSocket, State, TERMINAL_STATUSES } from "./debate-socket.js";
import {
  agentLabel,
  el,
  formatCost,
  formatNumber,
  formatPercent,
  formatPrice,
  formatSignedPercent,
  formatTime,
} from "./format.js";

const POLL_MS = 5000;
const SVG_NS = "http://www.w3.org/2000/svg";
const CANCELLABLE = new Set(["pending", "running"]);
const CONCLUSION_LABELS = {
  moderator: "Concluding at the moderator's request: the current argument finishes, then the verdict.",
  pause_timeout: "Paused too long: the current argument finishes, then the verdict.",
  budget: "The debate's budget was reached: the current argument finishes, then the verdict on what was said.",
};
const root = document.getElementById("debate-view");
const debateId = root.dataset.debateId;
const pingIntervalMs = Number(root.dataset.pingIntervalMs) || 30_000;
const $ = (id) => document.getElementById(id);

/** What the page says when the socket gives up with a close code (4001 goes to sign-in). */
const FAILURE_MESSAGES = {
  [CloseCode.NOT_FOUND]: "This debate does not exist.",
  [CloseCode.ORIGIN_NOT_ALLOWED]: "This site's origin is not allowed to connect.",
  [CloseCode.OPERATOR_DISCONNECT]: "You were disconnected by an operator.",
  [CloseCode.POLICY_VIOLATION]: "The server closed the connection after too many invalid messages from this page.",
};
// Failures a person may try again by hand: nothing is wrong with the debate or this origin.
const RETRYABLE_BY_HAND = new Set([CloseCode.OPERATOR_DISCONNECT, CloseCode.POLICY_VIOLATION]);

/** Everything the page shows, derived from events (plus REST for asset, viewers, verdict). */
const state = {
  debateId,
  asset: null,
  maxTurns: null,
  status: null,
  lastSeq: 0,
  connection: State.CONNECTING,
  currentTurn: null,
  currentAgent: null,
  viewerCount: null,
  verdict: null,
  market: null,
  canControl: false, // the signed-in user created the debate or is staff
  reconnects: 0,
  arguments: new Map(), // "turn:agent" -> {turn, agent, text, streamed, complete}
  closeCodes: [], // close codes of the sockets that dropped, oldest first
  error: null,
  paused: false, // moderator controls, from DEBATE/PAUSED, RESUMED, CONCLUDING (REST until then)
  concluding: null, // the reason, once the debate is concluding early
  controlsFromEvents: false,
  questions: new Map(), // questionId -> {id, text, askedBy, turn}
  usage: null, // {perAgent, total, estimated}: the latest meter reading (USAGE, or REST)
  budget: null, // {tokens, cost} | null: what the run concludes at
};

const argumentNodes = new Map(); // "turn:agent" -> {item, text: Text}
const columns = { bull: $("bull-arguments"), bear: $("bear-arguments"), moderator: $("moderator-arguments") };

function key(turn, agent) {
  return `${turn}:${agent}`;
}

function newArgument(turn, agent) {
  // `streamed` is only ever appended to: tests compare it with the saved content to prove that
  // no token was repeated or lost across reconnects (ARGUMENT_COMPLETE would hide that in `text`).
  return { turn, agent, text: "", streamed: "", complete: false };
}

function argumentNode(turn, agent) {
  const k = key(turn, agent);
  let node = argumentNodes.get(k);
  if (node) return node;
  const list = columns[agent] || columns.moderator;
  const item = el("li", `argument argument--${agent}`);
  item.dataset.turn = String(turn);
  item.dataset.agent = agent;
  item.dataset.complete = "false";
  const head = el("p", "argument__head");
  head.append(el("span", "argument__turn", `Turn ${turn}`));
  head.append(el("span", "argument__agent", agentLabel(agent)));
  const body = el("p", "argument__text");
  const text = document.createTextNode("");
  body.append(text);
  item.append(head, body);
  // Keep turns in order whatever order the events arrive in.
  const after = [...list.children].find((child) => Number(child.dataset.turn) > turn);
  list.insertBefore(item, after || null);
  node = { item, text };
  argumentNodes.set(k, node);
  if (!state.arguments.has(k)) state.arguments.set(k, newArgument(turn, agent));
  if (agent === "moderator") $("verdict").hidden = false;
  return node;
}

function onToken({ turn, agent, token }) {
  const node = argumentNode(turn, agent);
  const arg = state.arguments.get(key(turn, agent));
  arg.streamed += token;
  if (arg.complete) return;
  arg.text += token;
  node.text.appendData(token);
  node.item.classList.add("is-streaming");
}

function onArgument({ turn, agent, content }) {
  const node = argumentNode(turn, agent);
  const arg = state.arguments.get(key(turn, agent));
  arg.text = content;
  arg.complete = true;
  node.text.data = content;
  node.item.dataset.complete = "true";
  node.item.classList.remove("is-streaming");
  $("current-argument").textContent = `${agentLabel(agent)}, turn ${turn}: ${content}`;
}

function resetTranscript() {
  // CONNECTED.reset: the server replays the whole debate from seq 1, so drop what is shown.
  for (const { item } of argumentNodes.values()) item.remove();
  argumentNodes.clear();
  state.arguments.clear();
  state.questions.clear();
  $("question-list").replaceChildren();
  $("questions").hidden = true;
  state.paused = false;
  state.concluding = null;
  renderModeration();
  state.currentTurn = null;
  state.currentAgent = null;
  renderTurn();
}

function onTurn({ turn, currentAgent }) {
  const k = key(turn, currentAgent);
  const partial = state.arguments.get(k);
  if (partial && !partial.complete && (partial.text || partial.streamed)) {
    // A runner that took over a debate streams an unfinished turn again from its start.
    partial.text = "";
    partial.streamed = "";
    argumentNodes.get(k).text.data = "";
  }
  state.currentTurn = turn;
  state.currentAgent = currentAgent;
  argumentNode(turn, currentAgent).item.classList.add("is-streaming");
  $("current-argument").textContent = `${agentLabel(currentAgent)} is speaking (turn ${turn}).`;
  renderTurn();
}

function onStatus(status) {
  if (!status || status === state.status) return;
  const previous = state.status;
  state.status = status;
  const badge = $("debate-status");
  badge.textContent = status;
  badge.className = `status-badge status-badge--${status}`;
  root.dataset.status = status;
  if (TERMINAL_STATUSES.has(status)) {
    state.currentAgent = null;
    for (const { item } of argumentNodes.values()) item.classList.remove("is-streaming");
    loadDetails();
  } else if (status === "running" && previous && !state.market) {
    loadDetails(); // the runner stores the market snapshot as the run starts
  }
  renderCancel();
  renderModeration();
  renderTurn();
}

function renderTurn() {
  const total = state.maxTurns ? ` of ${state.maxTurns}` : "";
  const spoken = [...state.arguments.values()].filter((a) => a.agent !== "moderator").length;
  let label = "–";
  if (state.currentAgent === "moderator") label = "Verdict";
  else if (TERMINAL_STATUSES.has(state.status)) label = `${spoken}${total}`;
  else if (state.currentTurn) label = `${state.currentTurn}${total}`;
  $("debate-turn").textContent = label;
  root.dataset.currentTurn = state.currentTurn ?? "";
  root.dataset.currentAgent = state.currentAgent ?? "";
  for (const side of document.querySelectorAll(".side")) {
    side.classList.toggle("is-speaking", side.dataset.side === state.currentAgent);
  }
  for (const [k, { item }] of argumentNodes) {
    const current = state.currentAgent && k === key(state.currentTurn, state.currentAgent);
    item.classList.toggle("is-current", Boolean(current));
    if (current) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

function renderConnection(connection, detail = {}) {
  state.connection = connection;
  root.dataset.connection = connection;
  const node = $("connection-state");
  const labels = { failed: detail.code === CloseCode.NOT_FOUND ? "not found" : "disconnected", closed: "closed" };
  node.textContent = labels[connection] || connection;
  node.className = `conn conn--${connection}`;
}

function renderViewers(count) {
  state.viewerCount = count;
  $("viewer-count").textContent = String(count);
  root.dataset.viewerCount = String(count);
}

function renderVerdict(verdict) {
  if (!verdict) return;
  state.verdict = verdict;
  $("verdict").hidden = false;
  $("verdict-summary").hidden = false;
  const rec = $("verdict-recommendation");
  rec.textContent = verdict.recommendation;
  rec.className = `verdict__rec rec rec--${verdict.recommendation}`;
  $("verdict-confidence").textContent = formatPercent(verdict.confidence);
  $("verdict-rationale").textContent = verdict.rationale || "";
}

function setDelta(id, value, suffix = "") {
  const node = $(id);
  node.textContent = value === null || value === undefined ? "–" : `${formatSignedPercent(value)}${suffix}`;
  node.className = value > 0 ? "delta delta--up" : value < 0 ? "delta delta--down" : "delta";
}

function rsiLabel(rsi) {
  if (typeof rsi !== "number") return "–";
  const zone = rsi >= 70 ? " overbought" : rsi <= 30 ? " oversold" : "";
  return `${formatNumber(rsi, 1)}${zone}`;
}

/** A tiny line chart of the recent closes, built with DOM APIs (no HTML strings). */
function renderSparkline(closes) {
  const box = $("market-sparkline");
  const values = (closes || []).filter((v) => typeof v === "number");
  if (values.length < 2) {
    box.replaceChildren();
    return;
  }
  const width = 120;
  const height = 36;
  const low = Math.min(...values);
  const span = Math.max(...values) - low || 1;
  const points = values.map((v, i) => {
    const x = (i / (values.length - 1)) * (width - 4) + 2;
    const y = height - 2 - ((v - low) / span) * (height - 4);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  const first = values[0];
  const last = values[values.length - 1];
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent = `Last ${values.length} hourly closes, from ${formatPrice(first)} to ${formatPrice(last)}`;
  svg.setAttribute("aria-label", title.textContent);
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("class", last >= first ? "spark spark--up" : "spark spark--down");
  svg.append(title, line);
  box.replaceChildren(svg);
}

function renderMarket(market) {
  if (!market) return;
  state.market = market;
  $("market").hidden = false;
  $("market-name").textContent = market.name && market.name !== market.asset ? `· ${market.name}` : "";
  $("market-sample").hidden = market.isSample !== true;
  const asOf = formatTime(market.asOf);
  $("market-source").textContent = [market.source && `Source: ${market.source}`, asOf && `as of ${asOf}`]
    .filter(Boolean)
    .join(", ");
  const price = $("market-price");
  price.textContent = formatPrice(market.lastPrice);
  price.dataset.value = market.lastPrice === null || market.lastPrice === undefined ? "" : String(market.lastPrice);
  setDelta("market-change-24h", market.change24hPct);
  setDelta("market-change-7d", market.change7dPct);
  $("market-rsi").textContent = rsiLabel(market.rsi14);
  setDelta("market-sma20", market.priceVsSma20Pct);
  setDelta("market-sma50", market.priceVsSma50Pct);
  $("market-volatility").textContent =
    typeof market.volatility24hPct === "number" ? `${formatNumber(market.volatility24hPct, 2)}%` : "–";
  setDelta("market-volume", market.volumeChange24hPct);
  renderSparkline(market.recentCloses);
}

function tallyTokens(tally) {
  return (tally?.promptTokens || 0) + (tally?.completionTokens || 0);
}

/** The usage meter: tokens and cost per agent and in total, and the budget. */
function renderUsage(usage, budget) {
  if (!usage?.total) return;
  // REST knows only saved arguments: never let it roll back a newer live reading.
  if (state.usage && tallyTokens(usage.total) < tallyTokens(state.usage.total)) return;
  state.usage = usage;
  if (budget !== undefined) state.budget = budget;
  $("usage-meter").hidden = false;
  for (const row of $("usage-meter").querySelectorAll("tbody tr")) {
    const agent = row.dataset.row;
    const tally = agent === "total" ? usage.total : usage.perAgent?.[agent];
    for (const cell of row.querySelectorAll("td")) {
      const value = tally ? tally[cell.dataset.field] : null;
      cell.textContent = cell.dataset.field === "cost" ? formatCost(value) : formatNumber(value ?? 0, 0);
    }
  }
  $("meter-estimated").hidden = usage.estimated !== true;
  const limits = [];
  if (typeof state.budget?.tokens === "number") limits.push(`${formatNumber(state.budget.tokens, 0)} tokens`);
  if (typeof state.budget?.cost === "number") limits.push(formatCost(state.budget.cost));
  $("meter-budget").textContent = limits.length ? `Budget ${limits.join(" or ")}` : "";
  root.dataset.totalTokens = String(tallyTokens(usage.total));
}

// --- Moderator controls: pause, resume, ask, conclude (creator or staff) --------------------------

function questionMeta({ askedBy, turn, answeredInTurn }) {
  const asked = `Asked by ${askedBy || "the moderator"} during turn ${turn}`;
  return answeredInTurn ? `${asked} · answered in turn ${answeredInTurn}` : asked;
}

function renderQuestion({ id, questionId, text, askedBy, turn, answeredInTurn = null }) {
  const key = String(questionId ?? id);
  const known = state.questions.get(key);
  if (known) {
    if (answeredInTurn && !known.answeredInTurn) {
      known.answeredInTurn = answeredInTurn;
      known.meta.textContent = questionMeta(known);
    }
    return;
  }
  const item = el("li", "question");
  item.dataset.questionId = key;
  const meta = el("span", "question__meta", questionMeta({ askedBy, turn, answeredInTurn }));
  state.questions.set(key, { id: key, text, askedBy, turn, answeredInTurn, meta });
  item.append(meta);
  item.append(el("span", "question__text", text)); // text, never HTML
  const list = $("question-list");
  const after = [...list.children].find((child) => Number(child.dataset.questionId) > Number(key));
  list.insertBefore(item, after || null);
  $("questions").hidden = false;
}

function setPaused(paused, fromEvent = true) {
  if (fromEvent) state.controlsFromEvents = true;
  state.paused = paused;
  root.dataset.paused = String(paused);
  renderModeration();
}

function setConcluding(reason, fromEvent = true) {
  if (fromEvent) state.controlsFromEvents = true;
  state.concluding = reason || null;
  root.dataset.concluding = reason || "";
  if (reason) state.paused = false;
  renderModeration();
}

function renderModeration() {
  const live = !TERMINAL_STATUSES.has(state.status);
  const running = state.status === "running";
  $("paused-banner").hidden = !(live && state.paused);
  const banner = $("concluding-banner");
  banner.hidden = !(live && state.concluding);
  banner.textContent = state.concluding ? CONCLUSION_LABELS[state.concluding] || "Concluding: the verdict comes next." : "";
  $("moderation").hidden = !(isSignedIn() && state.canControl && CANCELLABLE.has(state.status));
  $("pause-debate").hidden = !(running && !state.paused && !state.concluding);
  $("resume-debate").hidden = !(running && state.paused);
  $("conclude-debate").hidden = !(running && !state.concluding);
  $("conclude-help").hidden = $("conclude-debate").hidden;
}

function showModerationMessage(message) {
  const box = $("moderation-message");
  box.textContent = message || "";
  box.hidden = !message;
}

async function moderate(action, body) {
  showModerationMessage(null);
  const buttons = document.querySelectorAll("#moderation button");
  for (const button of buttons) button.disabled = true;
  try {
    const { ok, status, data } = await apiFetch(`/api/debates/${encodeURIComponent(debateId)}/${action}/`, {
      method: "POST",
      body,
    });
    if (ok) return data;
    const fields = data && typeof data === "object" ? data.text || data.detail : null;
    const detail = Array.isArray(fields) ? fields.join(" ") : fields;
    if (status === 429) showModerationMessage(detail || "Too many controls; wait a moment.");
    else showModerationMessage(detail || `The server refused (HTTP ${status}).`);
    if (status === 409) loadDetails().catch(() => {});
  } catch {
    showModerationMessage("Could not reach the server.");
  } finally {
    for (const button of buttons) button.disabled = false;
  }
  return null;
}

async function pauseDebate() {
  const data = await moderate("pause");
  if (data && !state.controlsFromEvents) setPaused(Boolean(data.pausedAt), false);
}

async function resumeDebate() {
  const data = await moderate("resume");
  if (data && !state.controlsFromEvents) setPaused(Boolean(data.pausedAt), false);
}

async function concludeDebate() {
  const data = await moderate("conclude");
  if (data && !state.controlsFromEvents) setConcluding(data.conclusionReason, false);
}

async function askQuestion(event) {
  event.preventDefault();
  const input = $("question-text");
  const text = input.value.trim();
  if (!text) {
    input.setAttribute("aria-invalid", "true");
    showModerationMessage("Write a question first.");
    return;
  }
  input.removeAttribute("aria-invalid");
  const question = await moderate("ask", { text });
  if (question) {
    input.value = "";
    renderQuestion(question);
  }
}

function renderCancel() {
  $("debate-actions").hidden = !(isSignedIn() && state.canControl && CANCELLABLE.has(state.status));
}

function showCancelMessage(message) {
  const box = $("cancel-message");
  box.textContent = message || "";
  box.hidden = !message;
}

async function cancelDebate() {
  const button = $("cancel-debate");
  button.disabled = true;
  showCancelMessage(null);
  try {
    const { ok, status, data } = await apiFetch(`/api/debates/${encodeURIComponent(debateId)}/cancel/`, {
      method: "POST",
    });
    if (ok) {
      onStatus(data?.status || "cancelled");
    } else if (status === 403) {
      showCancelMessage(data?.detail || "Only the debate's creator or staff can cancel it.");
    } else if (status === 409) {
      showCancelMessage(data?.detail || "This debate has already finished.");
      loadDetails().catch(() => {});
    } else {
      showCancelMessage(data?.detail || `Could not cancel the debate (HTTP ${status}).`);
    }
  } catch {
    showCancelMessage("Could not reach the server to cancel the debate.");
  } finally {
    button.disabled = false;
  }
}

function showError(message) {
  state.error = message;
  const box = $("watch-error");
  box.textContent = message || "";
  box.hidden = !message;
}

let pollTimer = null;

/** Asset, turns, viewer count and the structured verdict come from the REST API. */
async function loadDetails() {
  const { ok, status, data } = await apiFetch(`/api/debates/${encodeURIComponent(debateId)}/`);
  if (!ok) {
    if (status === 404) showError("This debate does not exist.");
    return;
  }
  state.asset = data.asset;
  state.maxTurns = data.maxTurns;
  $("debate-asset").textContent = data.asset;
  document.title = `${data.asset} debate · tradeapp`;
  renderViewers(data.viewerCount ?? 0);
  if (!state.status) onStatus(data.status);
  if (data.verdict) renderVerdict(data.verdict);
  if (data.market) renderMarket(data.market);
  if (data.usage) {
    const hasBudget = data.budgetTokens != null || data.budgetCost != null;
    renderUsage(data.usage, hasBudget ? { tokens: data.budgetTokens, cost: data.budgetCost } : null);
  }
  state.canControl = data.canControl === true;
  for (const question of data.questions || []) renderQuestion(question);
  if (!state.controlsFromEvents) {
    state.paused = Boolean(data.pausedAt);
    state.concluding = data.conclusionReason || null;
  }
  renderCancel();
  renderModeration();
  if (data.error && data.status === "failed") showError(`The debate failed: ${data.error}`);
  renderTurn();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    if (!document.hidden) await loadDetails().catch(() => {});
    schedulePoll();
  }, POLL_MS);
}

function start() {
  const socket = new DebateSocket({
    debateId,
    getAccessToken,
    refreshAccessToken,
    hasCredentials: isSignedIn,
    pingIntervalMs,
  });
  socket
    .on("state", (detail) => {
      if (detail.state === State.RECONNECTING && detail.previous === State.LIVE) state.reconnects += 1;
      if (detail.state === State.RECONNECTING && detail.code !== undefined) state.closeCodes.push(detail.code);
      root.dataset.reconnects = String(state.reconnects);
      renderConnection(detail.state, detail);
      $("reconnect").hidden = !(detail.state === State.FAILED && RETRYABLE_BY_HAND.has(detail.code));
      if (detail.state === State.FAILED) {
        if (detail.code === CloseCode.UNAUTHORIZED) window.location.assign(signInUrl());
        else if (FAILURE_MESSAGES[detail.code]) showError(FAILURE_MESSAGES[detail.code]);
      } else if (detail.state === State.LIVE) {
        showError(null);
      }
    })
    .on("connected", (payload) => {
      onStatus(payload.status);
      if (typeof payload.viewers === "number") renderViewers(payload.viewers);
    })
    .on("reset", resetTranscript)
    .on("token", onToken)
    .on("argument", onArgument)
    .on("turn", onTurn)
    .on("recovering", () => {
      state.recovering = true;
      showError("The server running this debate stopped; another one is taking it over…");
    })
    .on("paused", () => setPaused(true))
    .on("resumed", () => setPaused(false))
    .on("question", renderQuestion)
    .on("concluding", (payload) => setConcluding(payload.reason))
    .on("status", (payload) => {
      if (state.recovering) {
        state.recovering = false; // taken over: the run announced itself again
        showError(null);
      }
      onStatus(payload.status);
      if (payload.verdict) renderVerdict(payload.verdict);
    })
    .on("usage", (payload) => renderUsage(payload, payload.budget ?? null))
    .on("error", (payload) => {
      if (payload?.message && payload.code !== CloseCode.UNAUTHORIZED) showError(payload.message);
    })
    .on("action", () => {
      state.lastSeq = socket.lastSeq;
      root.dataset.seq = String(socket.lastSeq);
    });
  $("reconnect").addEventListener("click", () => socket.retry());
  window.addEventListener("pagehide", () => socket.stop());
  // Back/forward cache: a restored page resumes from its last seq instead of staying frozen.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !TERMINAL_STATUSES.has(state.status)) socket.start();
  });
  window.debateView = {
    state,
    socket,
    /** The page's transcript in turn order: [{turn, agent, content, complete}]. */
    transcript: () =>
      [...state.arguments.values()]
        .sort((a, b) => a.turn - b.turn)
        .map(({ turn, agent, text, streamed, complete }) => ({ turn, agent, content: text, streamed, complete })),
  };
  socket.start();
}

if (requireAuth()) {
  $("cancel-debate").addEventListener("click", cancelDebate);
  $("pause-debate").addEventListener("click", pauseDebate);
  $("resume-debate").addEventListener("click", resumeDebate);
  $("conclude-debate").addEventListener("click", concludeDebate);
  $("ask-form").addEventListener("submit", askQuestion);
  renderConnection(State.CONNECTING);
  loadDetails().finally(schedulePoll);
  start();
}
