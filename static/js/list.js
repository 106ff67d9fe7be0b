// The debate list (status, live viewers) and the form that starts a new debate.
import { apiFetch, requireAuth } from "./auth.js";
import { el, formatCost, formatNumber, formatTime, viewersLabel } from "./format.js";

const REFRESH_MS = 5000;
const list = document.getElementById("debate-list");
const message = document.getElementById("list-message");
const form = document.getElementById("new-debate-form");
const prevButton = document.getElementById("prev-page");
const nextButton = document.getElementById("next-page");
let page = 1;
let timer = null;

/** Fill a row, reusing its link so that a periodic refresh never steals keyboard focus. */
function renderDebate(debate, item = el("li", "debate-item")) {
  item.dataset.debateId = debate.id;
  item.dataset.status = debate.status;
  let link = item.querySelector(".debate-item__link");
  if (!link) {
    link = el("a", "debate-item__link");
    link.href = `/debates/${encodeURIComponent(debate.id)}/`;
    item.append(link);
  }
  const turns = `${(debate.arguments || []).filter((a) => a.agent !== "moderator").length}/${debate.maxTurns} turns`;
  link.replaceChildren(el("span", "asset-tag", debate.asset), el("span", "debate-item__turns muted", turns));
  item.querySelector(".debate-item__meta")?.remove();
  const meta = el("div", "debate-item__meta");
  meta.append(el("span", `status-badge status-badge--${debate.status}`, debate.status));
  const viewers = el("span", "viewer-pill", viewersLabel(debate.viewerCount));
  viewers.dataset.viewerCount = String(debate.viewerCount ?? 0);
  meta.append(viewers);
  const total = debate.usage?.total;
  if (total) {
    const tokens = (total.promptTokens || 0) + (total.completionTokens || 0);
    const usage = el("span", "debate-item__usage muted", `${formatNumber(tokens, 0)} tokens · ${formatCost(total.cost)}`);
    usage.dataset.totalTokens = String(tokens);
    meta.append(usage);
  }
  const time = el("time", "muted", formatTime(debate.createdAt));
  time.dateTime = debate.createdAt || "";
  meta.append(time);
  if (debate.verdict) {
    meta.append(el("span", `rec rec--${debate.verdict.recommendation}`, debate.verdict.recommendation));
  }
  item.append(meta);
  return item;
}

async function load() {
  const { ok, status, data } = await apiFetch(`/api/debates/?page=${page}`);
  if (!ok) {
    if (status === 404 && page > 1) {
      page = 1;
      return load();
    }
    message.textContent = `Could not load debates (HTTP ${status}).`;
    return;
  }
  const existing = new Map([...list.children].map((item) => [item.dataset.debateId, item]));
  const items = data.results.map((debate) => renderDebate(debate, existing.get(debate.id)));
  for (const [id, item] of existing) {
    if (!data.results.some((debate) => debate.id === id)) item.remove();
  }
  // Move only rows that are out of place: re-inserting every row would drop the focus.
  items.forEach((item, index) => {
    if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
  });
  const text = data.count ? `${data.count} debate${data.count === 1 ? "" : "s"}` : "No debates yet: start one.";
  // The message is a live region: only touch it when it changes, so it is not re-announced.
  if (message.textContent !== text) message.textContent = text;
  list.dataset.refreshes = String(Number(list.dataset.refreshes || 0) + 1);
  prevButton.hidden = !data.previous;
  nextButton.hidden = !data.next;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if (!document.hidden) await load().catch(() => {});
    schedule();
  }, REFRESH_MS);
}

function showErrors(errors) {
  for (const node of form.querySelectorAll("[data-error-for]")) {
    const field = node.dataset.errorFor;
    const messages = errors[field] || (field === "non_field_errors" ? errors.nonFieldErrors || errors.detail : null);
    const text = Array.isArray(messages) ? messages.join(" ") : messages || "";
    node.textContent = text;
    node.hidden = !text;
    const input = form.querySelector(`[name="${field}"]`);
    if (input) input.setAttribute("aria-invalid", text ? "true" : "false");
  }
  const firstInvalid = form.querySelector("[aria-invalid=true]");
  if (firstInvalid) firstInvalid.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showErrors({});
  const body = { asset: form.asset.value };
  const turns = form.maxTurns.value.trim();
  if (turns !== "") body.maxTurns = /^-?\d+$/.test(turns) ? Number(turns) : turns;
  const budget = form.budgetTokens.value.trim();
  if (budget !== "") body.budgetTokens = /^-?\d+$/.test(budget) ? Number(budget) : budget;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const created = await apiFetch("/api/debates/", { method: "POST", body });
    if (created.status === 400) {
      showErrors(created.data || {});
      return;
    }
    if (!created.ok) {
      showErrors({ non_field_errors: created.data?.detail || `HTTP ${created.status}` });
      return;
    }
    const id = created.data.id;
    const started = await apiFetch(`/api/debates/${encodeURIComponent(id)}/start/`, { method: "POST" });
    if (!started.ok && started.status !== 409) {
      showErrors({ non_field_errors: started.data?.detail || `Could not start the debate (HTTP ${started.status}).` });
      return;
    }
    window.location.assign(`/debates/${encodeURIComponent(id)}/`);
  } finally {
    button.disabled = false;
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) load().catch(() => {});
});

prevButton.addEventListener("click", () => {
  page = Math.max(1, page - 1);
  load();
});
nextButton.addEventListener("click", () => {
  page += 1;
  load();
});
document.getElementById("refresh-list").addEventListener("click", () => load());

if (requireAuth()) {
  load().finally(schedule);
}
