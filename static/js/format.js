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

/** A number with grouping and at most `digits` decimals ("–" when missing). */
export function formatNumber(value, digits = 2) {
  return typeof value === "number" && Number.isFinite(value)
    ? value.toLocaleString("en-US", { maximumFractionDigits: digits })
    : "–";
}

/** A price exactly as the API gives it, with thousands grouping. */
export function formatPrice(value) {
  return formatNumber(value, 8);
}

/** A percentage with its sign: +2.35%, −1.2%, 0%. */
export function formatSignedPercent(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const text = formatNumber(Math.abs(value), 2);
  return `${value > 0 ? "+" : value < 0 ? "−" : ""}${text}%`;
}

/** US dollars: "$0.0042", "$1.20"; "unknown" for a model without a price (null). */
export function formatCost(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "unknown";
  return value.toLocaleString("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: value !== 0 && Math.abs(value) < 0.01 ? 6 : 2,
  });
}
