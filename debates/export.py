"""A finished debate as one document (JSON) or as Markdown: its record, arguments, verdict and
every event it streamed, from its archive (streaming.archive).

The document's ``debate`` is the debate as the REST API shows it (DebateSerializer), so fields
other features add to it (usage, resolution) are exported with it; the Markdown renders those as
sections of their own when present.
"""

import json

import orjson
from django.utils import timezone
from rest_framework.renderers import BaseRenderer

from debates.models import Debate
from debates.serializers import DebateSerializer
from streaming.archive import archive_read, synthesise_events

EXPORT_FORMAT = "tradeapp.debate-export"
EXPORT_VERSION = 1
# Debate fields rendered in the Markdown's own sections; any other object-valued field gets one.
_KNOWN = {"arguments", "verdict", "market", "id", "asset", "status", "maxTurns", "max_turns"}


def debate_events(*, debate: Debate) -> tuple[list[dict], bool]:
    """The finished debate's events in seq order, and whether they are a synthesis (the archive,
    else the synthesis the archive would hold, built here without writing it)."""
    archived = archive_read(debate_id=debate.pk)
    events, synthesised = archived if archived is not None else (synthesise_events(debate), True)
    return [orjson.loads(text) for _seq, text in events], synthesised


def debate_export(*, debate: Debate, context: dict) -> dict:
    """The export document of a finished debate."""
    events, synthesised = debate_events(debate=debate)
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now(),
        "debate": DebateSerializer(debate, context=context).data,
        "events": events,
        "events_synthesised": synthesised,
    }


def _get(data: dict, *names):
    for name in names:
        if name in data:
            return data[name]
    return None


def _percent(value) -> str:
    return f"{value * 100:.0f} %" if isinstance(value, int | float) else "unknown"


def export_markdown(data: dict) -> str:
    """The export document as Markdown (a 4xx answer's detail as one line)."""
    debate = data.get("debate") if isinstance(data, dict) else None
    if not isinstance(debate, dict):
        detail = data.get("detail", data) if isinstance(data, dict) else data
        return f"{detail}\n"
    lines = [f"# {debate.get('asset')} debate", ""]
    for label, names in (
        ("Debate", ("id",)),
        ("Status", ("status",)),
        ("Turns", ("maxTurns", "max_turns")),
        ("Created by", ("createdBy", "created_by")),
        ("Started", ("startedAt", "started_at")),
        ("Finished", ("finishedAt", "finished_at")),
    ):
        value = _get(debate, *names)
        if value not in (None, ""):
            lines.append(f"- **{label}:** {value}")
    market = debate.get("market")
    if isinstance(market, dict):
        sample = " (sample data)" if _get(market, "isSample", "is_sample") else ""
        price = _get(market, "lastPrice", "last_price")
        lines.append(
            f"- **Market:** {market.get('source') or 'unknown'}{sample}, last price {price}"
        )
    lines += ["", "## Transcript", ""]
    for argument in debate.get("arguments") or []:
        agent = str(argument.get("agent", "")).capitalize()
        lines += [f"### Turn {argument.get('turn')} — {agent}", "", argument.get("content", ""), ""]
    verdict = debate.get("verdict")
    if isinstance(verdict, dict):
        recommendation = str(verdict.get("recommendation", "")).upper()
        lines += ["## Verdict", ""]
        lines += [f"**{recommendation}**, confidence {_percent(verdict.get('confidence'))}", ""]
        lines += [verdict.get("rationale") or "", ""]
    for name, value in debate.items():
        if name not in _KNOWN and isinstance(value, dict):
            body = json.dumps(value, indent=2, default=str)
            lines += [f"## {name[:1].upper()}{name[1:]}", "", "```json", body, "```", ""]
    events = data.get("events") or []
    synthesised = data.get("events_synthesised")
    kind = "synthesised from the saved arguments" if synthesised else "as streamed"
    lines += [
        "## Events",
        "",
        f"{len(events)} events ({kind}); every one is in the JSON export.",
        "",
    ]
    return "\n".join(lines)


class MarkdownRenderer(BaseRenderer):
    """Render an export document as Markdown (``?format=md`` or ``Accept: text/markdown``)."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        """The Markdown text of the document, encoded."""
        return export_markdown(data).encode(self.charset)
