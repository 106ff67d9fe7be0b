// Small display helpers shared by the pages.

const AGENT_LABELS = { bull: "Bull", bear: "Bear", moderator: "Moderator" };

export function agentLabel(agent) {
  return AGENT_LABELS[agent] || String(agent);
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatPercent(value) {
  return typeof value === "number" ? `${Math.round(value * 100)}%` : "–";
}

/** Create an element with a class and text content (text only: never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function viewersLabel(count) {
  const n = Number(count) || 0;
  return `${n} watching`;
}
