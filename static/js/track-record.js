// The track record page: counts, hit rate, Brier score and a calibration chart per model and asset.
import { apiFetch, requireAuth } from "./auth.js";
import { calibrationChart } from "./calibration-chart.js";
import { el, formatNumber, formatPercent } from "./format.js";

const form = document.getElementById("track-filter");
const message = document.getElementById("track-message");

const score = (value) => formatNumber(value, 3);

/** The chart's numbers as a table (what a screen reader reads): the bins that hold verdicts. */
function calibrationTable(bins) {
  const details = el("details", "calibration-table");
  details.append(el("summary", "", "Calibration table"));
  const table = el("table", "");
  const head = el("tr", "");
  for (const title of ["Stated confidence", "Verdicts", "Right", "Hit rate"]) head.append(el("th", "", title));
  table.append(head);
  for (const bin of bins.filter((b) => b.count)) {
    const row = el("tr", "");
    row.dataset.bin = String(bin.bin);
    const range = `${bin.lower.toFixed(1)}–${bin.upper.toFixed(1)}`;
    for (const value of [range, bin.count, bin.hits, formatPercent(bin.hitRate)]) row.append(el("td", "", value));
    table.append(row);
  }
  details.append(table);
  return details;
}

/** One group's figures and chart; `data-*` attributes carry the raw numbers. */
function renderGroup(label, summary, kind) {
  const group = el("article", "track-group");
  group.dataset[kind] = label;
  if (kind !== "overall") group.append(el("h3", "track-group__title", label));
  const facts = el("dl", "track-facts");
  const rows = [
    ["Verdicts scored", String(summary.resolved), "resolved"],
    ["Hit rate", formatPercent(summary.hitRate), "hit-rate"],
    ["Mean Brier score", score(summary.meanBrier), "mean-brier"],
    ["Waiting for their horizon", String(summary.pending), "pending"],
    ["Unreadable verdicts (not scored)", String(summary.unparsed), "unparsed"],
  ];
  for (const [term, value, key] of rows) {
    const dd = el("dd", "", value);
    dd.dataset.fact = key;
    facts.append(el("dt", "", term), dd);
  }
  group.append(facts);
  if (summary.resolved) {
    group.append(calibrationChart(summary.calibration, label), calibrationTable(summary.calibration));
  } else {
    group.append(el("p", "muted", "No verdict scored yet."));
  }
  return group;
}

async function load() {
  const params = new URLSearchParams();
  for (const name of ["model", "asset"]) {
    const value = form[name].value.trim();
    if (value) params.set(name, value);
  }
  const { ok, status, data } = await apiFetch(`/api/track-record/?${params}`);
  if (!ok) {
    message.textContent = status === 400 ? "Check the filter." : `Could not load the track record (HTTP ${status}).`;
    return;
  }
  document.getElementById("track-sample").hidden = !data.sampleData;
  const total = data.overall.total;
  message.textContent = total
    ? `${total} verdict${total === 1 ? "" : "s"}; hold counts as right within ±${data.holdBandPct} %.`
    : "No verdicts yet: they appear here once debates have finished.";
  document.getElementById("track-overall").replaceChildren(renderGroup("all verdicts", data.overall, "overall"));
  document.getElementById("track-by-model").replaceChildren(...data.byModel.map((g) => renderGroup(g.model, g, "model")));
  document.getElementById("track-by-asset").replaceChildren(...data.byAsset.map((g) => renderGroup(g.asset, g, "asset")));
  document.body.dataset.trackLoaded = "true";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});

if (requireAuth()) load();
