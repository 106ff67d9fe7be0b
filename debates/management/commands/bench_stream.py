"""Capacity benchmark: W servers, V viewers, one live debate; delivery, latency, CPU, memory."""

import argparse
import os

from django.core.management.base import BaseCommand, CommandError

from bench.errors import BenchError
from bench.report import format_table, write_json
from bench.run import Config, run


def _cpus(text: str) -> list[int]:
    """A CPU list such as "0" or "0,1"."""
    try:
        return [int(cpu) for cpu in text.split(",") if cpu.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a CPU list such as 0 or 0,1, got {text!r}") from exc


class Command(BaseCommand):
    """manage.py bench_stream --workers W --viewers V --clients C --rate R --json PATH."""

    help = (
        "Start W daphne processes sharing Redis and a temporary SQLite database (or target "
        "--url servers), connect V WebSocket viewers from C client processes, run a real "
        "debate on the offline model and report delivery, token latency, time to first "
        "token, connection set-up and server CPU/memory per 1,000 connections."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=1, help="server processes (1)")
        parser.add_argument("--viewers", type=int, default=100, help="viewers (100)")
        parser.add_argument("--clients", type=int, default=2, help="client processes (2)")
        parser.add_argument("--rate", type=float, default=50.0, help="tokens/s of the model (50)")
        parser.add_argument(
            "--flush-ms", type=float, default=50.0, help="TOKEN_FLUSH_INTERVAL_MS (50)"
        )
        parser.add_argument("--turns", type=int, default=2, help="debate turns (2)")
        parser.add_argument(
            "--warmup", type=float, default=2.0, help="seconds between connect and start (2)"
        )
        parser.add_argument(
            "--timeout", type=float, default=300.0, help="bound on the whole run, s (300)"
        )
        parser.add_argument(
            "--connect-rate",
            type=float,
            default=500.0,
            help="arrival rate of the set-up phase, connections/s (500)",
        )
        parser.add_argument(
            "--connect-count",
            type=int,
            default=1000,
            help="connections of the set-up phase; 0 skips it (1000)",
        )
        parser.add_argument(
            "--connect-concurrency",
            type=int,
            default=100,
            help="handshakes in flight while viewers connect, over all clients (100)",
        )
        parser.add_argument(
            "--url",
            action="append",
            default=[],
            dest="urls",
            help="target a running server (http://HOST:PORT) instead of starting any; repeatable",
        )
        parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
        parser.add_argument(
            "--redis-url",
            default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/13",
            help="Redis shared by the servers (REDIS_URL or redis://127.0.0.1:6379/13); several "
            "nodes separated by commas are given to the servers as REDIS_URLS",
        )
        parser.add_argument(
            "--database-url",
            default="",
            help="database of the servers, migrated for the run (default: a temporary SQLite file)",
        )
        parser.add_argument(
            "--qa-token",
            default=os.environ.get("WS_QA_TOKEN", ""),
            help="WS_QA_TOKEN of --url servers (generated for servers started here)",
        )
        parser.add_argument("--asset", default="AAPL")
        parser.add_argument(
            "--source",
            choices=["api", "publisher"],
            default="api",
            help="api: a real debate via POST /start/ (default); publisher: synthetic events "
            "published through streaming.publisher from a separate process (fan-out alone)",
        )
        parser.add_argument(
            "--tokens-per-turn",
            type=int,
            default=200,
            help="tokens per turn with --source publisher",
        )
        parser.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="extra environment of the started servers; repeatable",
        )
        parser.add_argument(
            "--warm-debate",
            dest="warm_debate",
            action="store_true",
            help="run an unwatched 1-turn debate on each server before measuring (by default "
            "the measured debate is each server's first, as after a deploy)",
        )
        parser.add_argument(
            "--no-warm-debate",
            dest="warm_debate",
            action="store_false",
            help="the default: no warm-up debate",
        )
        parser.add_argument(
            "--viewer-rate",
            type=float,
            default=0.0,
            help="viewers arrive at this rate (connections/s) instead of --connect-concurrency "
            "at a time, and the debate starts as the last one arrives, during the storm (0: off)",
        )
        parser.add_argument(
            "--kill-server",
            type=int,
            default=None,
            metavar="N",
            help="SIGKILL server N (0..workers-1; 0 runs the debate, so its takeover is "
            "included) during the debate: its viewers reconnect to the others with lastSeq",
        )
        parser.add_argument(
            "--kill-at",
            type=float,
            default=5.0,
            help="seconds after the debate's start to kill --kill-server (5)",
        )
        parser.add_argument(
            "--server-cpus",
            type=_cpus,
            default=[],
            metavar="LIST",
            help="pin the started servers to these CPUs, e.g. 0 (as taskset -c 0 would)",
        )
        parser.add_argument(
            "--client-cpus",
            type=_cpus,
            default=[],
            metavar="LIST",
            help="pin the load generator (client processes and this one) to these CPUs, e.g. 1",
        )
        parser.add_argument(
            "--voters",
            type=int,
            default=0,
            help="users who vote over REST while the debate streams: votes accepted per "
            "second, tally latency (vote answered -> DEBATE/VOTES seen by each viewer) (0: off)",
        )
        parser.add_argument(
            "--vote-window",
            type=float,
            default=10.0,
            help="seconds over which the --voters vote, evenly (10)",
        )
        parser.add_argument(
            "--vote-delay",
            type=float,
            default=0.0,
            help="seconds after the debate's start request before the first vote (0); with "
            "--source publisher the stream begins once the publisher process has started",
        )
        parser.add_argument("--json", dest="json_path", default="", help="write the report here")
        parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")

    def handle(self, *args, **opts) -> None:
        if opts["viewers"] < 1 or opts["clients"] < 1 or opts["workers"] < 1:
            raise CommandError("--viewers, --clients and --workers must be at least 1")
        if opts["server"] == "uvicorn":
            try:
                import uvicorn  # noqa: F401
            except ImportError as exc:
                raise CommandError("--server uvicorn needs uvicorn installed") from exc
        if opts["kill_server"] is not None and (
            opts["urls"] or opts["workers"] < 2 or not 0 <= opts["kill_server"] < opts["workers"]
        ):
            raise CommandError("--kill-server N needs N < --workers, at least 2 workers, no --url")
        if opts["urls"] and not opts["qa_token"]:
            raise CommandError("--url needs --qa-token (or WS_QA_TOKEN): the servers' QA token")
        server_env = {}
        for item in opts["env"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--env expects KEY=VALUE, got {item!r}")
            server_env[key] = value
        cfg = Config(
            workers=opts["workers"],
            viewers=opts["viewers"],
            clients=min(opts["clients"], opts["viewers"]),
            rate=opts["rate"],
            flush_ms=opts["flush_ms"],
            turns=opts["turns"],
            warmup=opts["warmup"],
            timeout=opts["timeout"],
            connect_rate=opts["connect_rate"],
            connect_count=opts["connect_count"],
            connect_concurrency=opts["connect_concurrency"],
            urls=opts["urls"],
            server=opts["server"],
            redis_url=opts["redis_url"],
            database_url=opts["database_url"],
            qa_token=opts["qa_token"],
            asset=opts["asset"],
            source=opts["source"],
            tokens_per_turn=opts["tokens_per_turn"],
            warm_debate=opts["warm_debate"],
            viewer_rate=opts["viewer_rate"],
            server_env=server_env,
            keep=opts["keep"],
            kill_server=opts["kill_server"],
            kill_at=opts["kill_at"],
            server_cpus=opts["server_cpus"],
            client_cpus=opts["client_cpus"],
            voters=max(0, opts["voters"]),
            vote_window=max(0.0, opts["vote_window"]),
            vote_delay=max(0.0, opts["vote_delay"]),
        )
        try:
            report = run(cfg, out=lambda line: self.stderr.write(line))
        except (BenchError, RuntimeError, OSError) as exc:
            raise CommandError(f"benchmark failed: {exc}") from exc
        except KeyboardInterrupt as exc:
            raise CommandError("interrupted; every process started was stopped") from exc
        if opts["json_path"]:
            write_json(report, opts["json_path"])
        self.stdout.write(format_table(report))
        if not report["ok"]:
            raise CommandError("not every viewer received every event of a completed debate")
