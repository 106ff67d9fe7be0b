"""Statistics of a run: percentiles, 0.1 ms latency histograms, and the client processes'
answers merged into the report's delivery, latency and debate figures."""

from bench.wsclient import parse_ts
from streaming.protocol import TOKEN_RECEIVED


def percentile_from_hist(hist: dict, q: float) -> float | None:
    """The q-quantile (0..1) in ms of a 0.1 ms histogram."""
    total = sum(hist.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen > rank:
            return round(bucket / 10 + 0.05, 2)
    return round(max(hist) / 10, 2)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of a list, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def ms(value: float | None) -> float | None:
    """Seconds to ms, rounded."""
    return None if value is None else round(value * 1000, 2)


def merge_counts(into: dict, more: dict) -> dict:
    """Add counts of `more` into `into`."""
    for key, value in more.items():
        into[key] = into.get(key, 0) + value
    return into


def merged(results: list[dict], key: str) -> dict:
    """The counts under `key` of every client answer, added up."""
    total: dict = {}
    for result in results:
        merge_counts(total, result[key])
    return total


def timing(results: list[dict]) -> dict:
    """p50 and p99 in ms of the "times" (s) of every client answer."""
    times = [t for r in results for t in r["times"]]
    return {"p50_ms": ms(percentile(times, 0.5)), "p99_ms": ms(percentile(times, 0.99))}


def hist_summary(hist: dict) -> dict:
    """p50 and p99 in ms of a 0.1 ms histogram, and how many it holds."""
    return {
        "p50": percentile_from_hist(hist, 0.5),
        "p99": percentile_from_hist(hist, 0.99),
        "count": sum(hist.values()),
    }


def analyse(results: list[dict], start_sent: float, viewers: int, flush_ms: float) -> dict:
    """Merge the client processes' watch answers into delivery and latency figures."""
    summaries = [v for r in results for v in r["viewers"]]
    final_seq = max((v["final"] for v in summaries), default=0) or max(
        (v["last"] for v in summaries), default=0
    )
    final_statuses = {v["status"] for v in summaries if v["status"]}
    complete = 0
    viewers_missing = 0
    missing_events = 0
    duplicates = 0
    reordered = 0
    sample_missing: list = []
    close_codes: dict = {}
    first_tokens = []
    for v in summaries:
        missing = v["n_gaps"] + max(0, final_seq - v["last"])
        duplicates += v["dups"]
        reordered += v["reordered"]
        if missing == 0 and v["dups"] == 0 and v["final"] == final_seq:
            complete += 1
        if missing:
            viewers_missing += 1
            missing_events += missing
            if len(sample_missing) < 10:
                sample_missing.append(
                    {
                        "gaps": v["gaps"],
                        "lastSeq": v["last"],
                        "missingAfterLast": final_seq - v["last"],
                    }
                )
        if v["close"] is not None:
            key = str(v["close"])
            close_codes[key] = close_codes.get(key, 0) + 1
        if v["first_token"]:
            first_tokens.append(v["first_token"] - start_sent)
    token_hist = merged(results, "token_hist")
    event_hist = merged(results, "event_hist")
    sample = next((r["sample"] for r in results if r.get("sample")), []) or []
    debate = debate_shape(sample, start_sent, flush_ms)
    debate["final_seq"] = final_seq
    debate["final_status"] = ",".join(sorted(final_statuses)) or None
    return {
        "delivery": {
            "viewers": viewers,
            "complete": complete,
            "complete_share": round(complete / viewers, 4) if viewers else None,
            "viewers_missing_events": viewers_missing + (viewers - len(summaries)),
            "missing_events": missing_events,
            "duplicates": duplicates,
            "reordered": reordered,
            "missing_sample": sample_missing,
            "close_codes": close_codes,
            "reconnects": sum(v["reconnects"] for v in summaries),
            "replayed_events": sum(r.get("replayed", 0) for r in results),
        },
        # From the event's creation (its timestamp: production -> receipt) ...
        "token_latency_ms": {
            "p50": percentile_from_hist(token_hist, 0.5),
            "p99": percentile_from_hist(token_hist, 0.99),
            "max": ms(max((r["token_max"] for r in results), default=None)),
            "frames": sum(r["token_frames"] for r in results),
        },
        # ... and from the flush that sent it (its publishedAt: flush -> receipt).
        "token_flush_latency_ms": hist_summary(merged(results, "token_flush_hist")),
        "event_latency_ms": {
            "p50": percentile_from_hist(event_hist, 0.5),
            "p99": percentile_from_hist(event_hist, 0.99),
        },
        "event_flush_latency_ms": hist_summary(merged(results, "event_flush_hist")),
        "first_token_ms": {
            "p50": ms(percentile(first_tokens, 0.5)),
            "p99": ms(percentile(first_tokens, 0.99)),
            "max": ms(max(first_tokens) if first_tokens else None),
            "viewers": len(first_tokens),
        },
        "debate": debate,
    }


def rehoming(results: list[dict]) -> dict:
    """Viewers that lost their socket: how many came back, how long it took (socket lost ->
    CONNECTED elsewhere), and the token latency of the undisturbed viewers meanwhile."""
    summaries = [v for r in results for v in r["viewers"]]
    disrupted = [v for v in summaries if v["disrupted"]]
    times = [t for v in disrupted for t in v["rehome"]]
    return {
        "viewers_disrupted": len(disrupted),
        "viewers_rehomed": sum(1 for v in disrupted if v["rehome"]),
        "reconnect_attempts": sum(v["reconnects"] for v in disrupted),
        "rehome_p50_ms": ms(percentile(times, 0.5)),
        "rehome_p99_ms": ms(percentile(times, 0.99)),
        "rehome_max_ms": ms(max(times) if times else None),
        "others_token_latency_ms": hist_summary(merged(results, "storm_hist")),
    }


def debate_shape(sample: list, start_sent: float, flush_ms: float) -> dict:
    """Events, token frames, pace and the observed coalescing interval, from one viewer."""
    if not sample:
        return {}
    times = [parse_ts(s[2]) for s in sample]  # created
    sent = [s[5] or parse_ts(s[2]) for s in sample]  # published (flushed)
    gaps = []
    for prev, cur, t_prev, t_cur in zip(sample, sample[1:], sent, sent[1:], strict=False):
        if prev[1] == cur[1] == TOKEN_RECEIVED and prev[3] == cur[3]:
            gaps.append(t_cur - t_prev)
    token_frames = [s for s in sample if s[1] == TOKEN_RECEIVED]
    return {
        "events": len(sample),
        "token_frames": len(token_frames),
        "token_chars": sum(s[4] for s in token_frames),
        "duration_s": round(times[-1] - times[0], 2),
        # Where time to first token goes: the server creating events vs delivering them.
        "start_to_first_event_ms": ms(times[0] - start_sent),
        "start_to_first_token_event_ms": ms(
            next((t for s, t in zip(sample, times, strict=True) if s[1] == TOKEN_RECEIVED), 0)
            - start_sent
        )
        if token_frames
        else None,
        "start_to_first_token_sent_ms": ms(
            next((t for s, t in zip(sample, sent, strict=True) if s[1] == TOKEN_RECEIVED), 0)
            - start_sent
        )
        if token_frames
        else None,
        "flush_ms_configured": flush_ms,
        "token_frame_interval_ms_p50": ms(percentile(gaps, 0.5)),
        "token_frame_interval_ms_p99": ms(percentile(gaps, 0.99)),
    }
