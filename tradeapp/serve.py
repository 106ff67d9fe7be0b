"""The one production entry point: ``python -m tradeapp.serve`` runs daphne with the tuned defaults.

Docker's entry point, the compose file, the README's production recipe, ``scripts/serve.sh`` and
the benchmark's launcher (``bench.launcher.server_command``) all start servers with this module,
so a figure in docs/benchmarks.md is one a user gets. Everything comes from the environment (the
"Serving process" section of tradeapp/settings.py); a flag overrides its variable for one run
(``--help``). What it tunes, and why:

* a listen backlog of SERVER_LISTEN_BACKLOG (4096; the kernel caps it at net.core.somaxconn):
  daphne's default (50) overflows when thousands arrive at once, and the kernel drops their SYNs
  without a word to the client;
* pooled database connections on PostgreSQL (Django's psycopg pool, DB_POOL_MAX_SIZE 10 unless
  set): the default, a new connection per use, puts a PostgreSQL connect (several ms) in front of
  every batch of viewer rows on the one database thread, and persistent connections
  (DB_CONN_MAX_AGE) leak one connection per finished request thread under ASGI;
* daphne's handshake timeout (SERVER_WS_CONNECT_TIMEOUT_S, 30 s instead of 5 s), so a socket
  queued behind a storm is served late rather than killed unanswered;
* protocol pings (SERVER_PING_INTERVAL_S / SERVER_PING_TIMEOUT_S, 20 / 30 s) and the access log
  (SERVER_ACCESS_LOG; redacted by streaming.server).
"""

import argparse
import os
import sys

from django.conf import settings  # lazy: read once main() has set the defaults below

# Applied before the settings are read, unless the environment says otherwise.
SERVING_DEFAULTS = {"DB_POOL_MAX_SIZE": "10"}
ASGI_APP = "tradeapp.asgi:application"


def endpoint(host: str, port: int, backlog: int) -> str:
    """daphne's (Twisted's) endpoint string for a TCP listener with this backlog."""
    interface = host.strip("[]").replace(":", r"\:")  # an IPv6 address's colons are escaped
    return f"tcp:port={port}:interface={interface}:backlog={backlog}"


def daphne_argv(args: argparse.Namespace) -> list[str]:
    """daphne's command-line arguments for these options."""
    argv = ["-e", endpoint(args.host, args.port, args.backlog)]
    argv += ["--ping-interval", str(args.ping_interval), "--ping-timeout", str(args.ping_timeout)]
    argv += ["--websocket_connect_timeout", str(args.connect_timeout)]
    if not args.access_log:
        argv += ["-v", "0"]
    return [*argv, ASGI_APP]


# Whole-number options, each defaulting to its setting (whose name is its variable's).
NUMBER_OPTIONS = (
    ("--port", "SERVER_PORT", "PORT"),
    ("--backlog", "SERVER_LISTEN_BACKLOG", "SERVER_LISTEN_BACKLOG"),
    ("--ping-interval", "SERVER_PING_INTERVAL_S", "SERVER_PING_INTERVAL_S"),
    ("--ping-timeout", "SERVER_PING_TIMEOUT_S", "SERVER_PING_TIMEOUT_S"),
    ("--connect-timeout", "SERVER_WS_CONNECT_TIMEOUT_S", "SERVER_WS_CONNECT_TIMEOUT_S"),
)


def parser() -> argparse.ArgumentParser:
    """The options, with their defaults from the settings (i.e. the environment)."""
    options = argparse.ArgumentParser(
        prog="python -m tradeapp.serve", description="Serve tradeapp with daphne, tuned."
    )
    options.add_argument("--host", default=settings.SERVER_HOST, help="HOST")
    for flag, setting, variable in NUMBER_OPTIONS:
        options.add_argument(flag, type=int, default=getattr(settings, setting), help=variable)
    options.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=settings.SERVER_ACCESS_LOG,
        help="SERVER_ACCESS_LOG",
    )
    return options


def apply_serving_defaults() -> None:
    """Put SERVING_DEFAULTS in the environment where it leaves them unset or empty (before the
    settings are read)."""
    for name, value in SERVING_DEFAULTS.items():
        if not os.environ.get(name, "").strip():
            os.environ[name] = value
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeapp.settings")


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run daphne in this process (it returns when daphne stops)."""
    apply_serving_defaults()
    args = parser().parse_args(argv)
    # Imported only to serve: importing daphne installs Twisted's asyncio reactor.
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_argv(args))


if __name__ == "__main__":
    main(sys.argv[1:])
