// Under the verdict on the watch page: when the track record checks it against the market, and
// how it turned out (the debate's `forecast` from the REST API).
import { formatNumber, formatPrice, formatSignedPercent, formatTime } from "./format.js";

/** Fill `node` with the verdict's check (hidden until the verdict has been priced). */
export function renderVerdictCheck(node, forecast) {
  if (!node) return;
  node.hidden = !forecast;
  if (!forecast) return;
  const sample = forecast.isSample ? " (sample market data)" : "";
  let text;
  if (!forecast.parsed) {
    text = "The verdict could not be read: the track record counts it apart, never as a hold.";
    node.dataset.outcome = "unparsed";
  } else if (!forecast.resolvedAt) {
    text = `Checked against the market on ${formatTime(forecast.dueAt)}; price when given ${formatPrice(forecast.price)}${sample}.`;
    node.dataset.outcome = "pending";
  } else {
    const verdict = forecast.hit ? "right" : "wrong";
    text = `Checked on ${formatTime(forecast.dueAt)}: ${formatSignedPercent(forecast.returnPct)} since the verdict${sample}, so it was ${verdict} (Brier score ${formatNumber(forecast.brier, 3)}).`;
    node.dataset.outcome = verdict;
  }
  const link = document.createElement("a");
  link.href = "/track-record/";
  link.textContent = "Track record";
  node.replaceChildren(`${text} `, link);
}
