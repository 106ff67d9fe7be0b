"""The report of a run: a plain-text table for people, JSON for files."""

import json
from pathlib import Path


def format_table(report: dict) -> str:
    """The report as a plain-text table."""
    rows: list[tuple[str, str]] = []

    def add(name: str, value) -> None:
        rows.append((name, "-" if value is None else str(value)))

    cfg = report["config"]
    add("servers", f"{report['servers']['kind']} x {len(report['servers']['targets'])}")
    add("viewers / client processes", f"{cfg['viewers']} / {cfg['clients']}")
    add("token rate / flush ms / turns", f"{cfg['rate']:g} / {cfg['flush_ms']:g} / {cfg['turns']}")
    if "setup" in report:
        s = report["setup"]
        add(
            f"set-up at {s['rate_per_s']:g}/s p50 / p99 / max ms",
            f"{s['p50_ms']} / {s['p99_ms']} / {s['max_ms']}  "
            f"({s['connected']}/{s['attempted']} ok, errors {s['errors'] or 'none'})",
        )
    c = report["connect"]
    add(
        "viewers connected",
        f"{c['connected']}/{c['viewers']} in {c['elapsed_s']} s "
        f"(p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, retried {c['retried']}, "
        f"errors {c['errors'] or 'none'})",
    )
    d = report["delivery"]
    add(
        "delivery: every event",
        f"{d['complete']}/{d['viewers']} viewers ({100 * (d['complete_share'] or 0):.2f} %)",
    )
    add(
        "missing / duplicate / reordered",
        f"{d['missing_events']} / {d['duplicates']} / {d['reordered']} "
        f"(close codes {d['close_codes'] or 'none'}; reconnects {d['reconnects']}, "
        f"replayed {d['replayed_events']})",
    )
    deb = report["debate"]
    add(
        "debate",
        f"{deb.get('status')} final seq {deb.get('final_seq')}, {deb.get('events')} events, "
        f"{deb.get('token_frames')} token frames, {deb.get('duration_s')} s",
    )
    add(
        "coalescing: configured / observed p50 ms",
        f"{deb.get('flush_ms_configured')} / {deb.get('token_frame_interval_ms_p50')}",
    )
    t = report["token_latency_ms"]
    add("token latency p50 / p99 / max ms", f"{t['p50']} / {t['p99']} / {t['max']}")
    tf = report["token_flush_latency_ms"]
    add("  (production -> receipt; flush -> receipt p50 / p99)", f"{tf['p50']} / {tf['p99']}")
    f = report["first_token_ms"]
    add(
        "time to first token p50 / p99 ms",
        f"{f['p50']} / {f['p99']} (first token created "
        f"{deb.get('start_to_first_token_event_ms')} ms, sent "
        f"{deb.get('start_to_first_token_sent_ms')} ms after the start request)",
    )
    if "kill" in report:
        k = report["kill"]
        add(
            f"killed server {k['server']} at {k['at_s']:g} s",
            f"{'it ran the debate; ' if k['ran_the_debate'] else ''}"
            f"{k['viewers_rehomed']}/{k['viewers_disrupted']} disrupted viewers re-homed "
            f"({k['viewers_on_it']} were on it), {k['reconnect_attempts']} attempts",
        )
        add(
            "  re-home p50 / p99 / max ms",
            f"{k['rehome_p50_ms']} / {k['rehome_p99_ms']} / {k['rehome_max_ms']}",
        )
        o = k["others_token_latency_ms"]
        add(
            f"  others' token latency p50 / p99 ms (first {k['storm_window_s']:g} s)",
            f"{o['p50']} / {o['p99']} ({o['count']} frames)",
        )
    if "votes" in report:
        v = report["votes"]
        add(
            f"votes: {v['voters']} voters over {v['window_s']:g} s",
            f"{v['accepted']} accepted ({v['accepted_per_s']}/s), answers {v['answers']}, "
            f"request p50 / p99 {v['request_ms']['p50']} / {v['request_ms']['p99']} ms",
        )
        tl = v["tally_latency_ms"]
        add(
            "  tally latency p50 / p99 / max ms",
            f"{tl['p50']} / {tl['p99']} / {tl['max']} ({tl['pairs']} vote x viewer pairs, "
            f"{tl['never_seen']} never seen)",
        )
        if "token_latency_during_votes_ms" in v:
            during, outside = (
                v["token_latency_during_votes_ms"],
                v["token_latency_outside_votes_ms"],
            )
            add(
                "  token latency p50 / p99 ms during / outside the votes",
                f"{during['p50']} / {during['p99']} ({during['count']} frames) vs "
                f"{outside['p50']} / {outside['p99']} ({outside['count']} frames)",
            )
        fr = v["votes_frames_per_viewer"]
        add(
            "  DEBATE/VOTES per viewer mean / max",
            f"{fr['mean']} / {fr['max']} ({v['viewers_with_final_tally']} viewers saw the "
            "final tally)",
        )
    r = report["server_resources"]
    add(
        "server CPU % (total, per 1k conns)",
        f"{r['cpu_pct']} ({r['cpu_pct_per_1k_connections']} per 1k)",
    )
    add(
        "server RSS MB idle / connected / peak",
        f"{r['rss_idle_mb']} / {r['rss_connected_mb']} / {r['rss_peak_mb']}",
    )
    add(
        "server memory per 1k conns",
        f"{r['mb_per_1k_connections']} MB ({r['kb_per_connection']} KB/conn)",
    )
    add("client CPU %", report["client_resources"]["cpu_pct"])
    add("result", "OK: every viewer got every event" if report["ok"] else "INCOMPLETE")
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def write_json(report: dict, path: str) -> None:
    """Write the report as JSON."""
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
