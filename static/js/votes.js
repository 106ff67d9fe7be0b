// The audience vote: the swing's label (list and watch pages) and the watch page's vote panel.
// Tallies come from the REST detail (`votes`) and live from DEBATE/VOTES; the highest version wins.
import { apiFetch } from "./auth.js";
import { agentLabel, el } from "./format.js";

const SIDES = ["bull", "bear"];
const PHASE_LABELS = { before: "Before the debate", after: "After the verdict" };

function points(value) {
  const text = Math.abs(value).toLocaleString("en-US", { maximumFractionDigits: 1 });
  return `${value > 0 ? "+" : value < 0 ? "−" : "±"}${text} pts`;
}

/** "Moved the room: Bear +41.7 pts", "Nobody moved the room", or null before both votes. */
export function swingLabel(votes) {
  if (!votes || !votes.swing) return null;
  if (!votes.movedTo) return "Nobody moved the room";
  return `Moved the room: ${agentLabel(votes.movedTo)} ${points(votes.swing[votes.movedTo])}`;
}

/** The total votes of one phase's {bull, bear}. */
function total(counts) {
  return SIDES.reduce((sum, side) => sum + (Number(counts?.[side]) || 0), 0);
}

/** The watch page's vote section: buttons for the open phase, both phases' tallies, the swing. */
export class VotePanel {
  constructor(debateId, root) {
    this.debateId = debateId;
    this.root = root;
    this.version = -1;
    this.votes = null; // {before, after, swing, movedTo, open, mine, version}
    this.busy = false;
    for (const button of root.querySelectorAll("[data-vote]")) {
      button.addEventListener("click", () => this.vote(button.dataset.vote));
    }
  }

  /** The debate's `votes` from the REST API (tallies, open phase, my votes). */
  render(votes) {
    if (!votes) return;
    if (votes.version >= this.version) this._apply(votes);
    else this.votes = { ...this.votes, open: votes.open, closesAt: votes.closesAt, mine: votes.mine };
    this._draw();
  }

  /** A DEBATE/VOTES payload: live tallies (older versions are ignored). */
  onTallies(payload) {
    if (typeof payload?.version !== "number" || payload.version <= this.version) return;
    this._apply({ ...(this.votes || {}), ...payload });
    this._draw();
  }

  _apply(votes) {
    this.version = votes.version;
    this.votes = { ...(this.votes || {}), ...votes };
    this.root.dataset.version = String(this.version);
  }

  async vote(side) {
    if (this.busy) return;
    this.busy = true;
    this._message(null);
    this._draw();
    try {
      const path = `/api/debates/${encodeURIComponent(this.debateId)}/vote/`;
      const { ok, status, data } = await apiFetch(path, { method: "POST", body: { side } });
      if (ok) {
        this.render(data.votes);
        this._message(`Your ${data.phase} vote: ${agentLabel(data.side)}.`);
      } else if (status === 409) {
        this.votes = { ...(this.votes || {}), open: null };
        this._message(data?.detail || "Voting is closed.");
      } else if (status === 429) {
        this._message("Too many votes: wait a moment.");
      } else {
        this._message(data?.detail || data?.side?.join(" ") || `Could not vote (HTTP ${status}).`);
      }
    } catch {
      this._message("Could not reach the server to vote.");
    } finally {
      this.busy = false;
      this._draw();
    }
  }

  _message(text) {
    const box = this.root.querySelector("#vote-message");
    box.textContent = text || "";
    box.hidden = !text;
  }

  _draw() {
    const votes = this.votes;
    if (!votes) return;
    this.root.hidden = false;
    const open = votes.open || null;
    this.root.dataset.open = open || "";
    const prompt = this.root.querySelector("#vote-prompt");
    prompt.textContent = open
      ? `${PHASE_LABELS[open]}: who makes the better case?`
      : "Voting is closed.";
    for (const button of this.root.querySelectorAll("[data-vote]")) {
      button.hidden = !open;
      button.disabled = this.busy;
      const mine = open && votes.mine?.[open] === button.dataset.vote;
      button.setAttribute("aria-pressed", mine ? "true" : "false");
    }
    for (const phase of Object.keys(PHASE_LABELS)) {
      const counts = votes[phase] || {};
      const sum = total(counts);
      for (const side of SIDES) {
        const node = this.root.querySelector(`[data-tally="${phase}-${side}"]`);
        const n = Number(counts[side]) || 0;
        node.textContent = sum ? `${n} (${Math.round((100 * n) / sum)}%)` : String(n);
        node.dataset.count = String(n);
      }
    }
    const swing = this.root.querySelector("#vote-swing");
    const label = swingLabel(votes);
    swing.textContent = label || "";
    swing.hidden = !label;
    swing.dataset.movedTo = votes.movedTo || "";
  }
}
