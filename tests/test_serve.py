"""The production entry point: daphne's arguments from the settings, the tuned defaults, and a
real server started through it listening with the storm-sized backlog."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.launcher import cluster
from tradeapp import serve

ROOT = Path(__file__).resolve().parent.parent


def _options(**overrides) -> argparse.Namespace:
    values = {
        "host": "127.0.0.1",
        "port": 8000,
        "backlog": 4096,
        "ping_interval": 20,
        "ping_timeout": 30,
        "connect_timeout": 30,
        "access_log": True,
    }
    return argparse.Namespace(**{**values, **overrides})


def test_daphne_gets_the_backlog_in_its_endpoint_and_every_tuned_option():
    assert serve.daphne_argv(_options()) == [
        "-e",
        "tcp:port=8000:interface=127.0.0.1:backlog=4096",
        "--ping-interval",
        "20",
        "--ping-timeout",
        "30",
        "--websocket_connect_timeout",
        "30",
        "tradeapp.asgi:application",
    ]
    quiet = serve.daphne_argv(_options(access_log=False, host="::", port=9))
    assert quiet[1] == r"tcp:port=9:interface=\:\::backlog=4096"
    assert quiet[-3:] == ["-v", "0", "tradeapp.asgi:application"]


def test_the_options_default_to_the_settings(settings):
    args = serve.parser().parse_args([])
    assert (args.host, args.port) == (settings.SERVER_HOST, settings.SERVER_PORT)
    assert args.backlog == 4096
    assert (args.ping_interval, args.ping_timeout, args.connect_timeout) == (20, 30, 30)
    assert args.access_log is True
    assert serve.parser().parse_args(["--port", "9001", "--no-access-log"]).port == 9001


def _python(code: str, **env: str) -> str:
    """What `code` prints in a fresh interpreter (the pool's variables unset unless given)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tradeapp.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def _served_database(**env: str) -> str:
    return _python(
        "from tradeapp import serve; serve.apply_serving_defaults(); "
        "from django.conf import settings; db = settings.DATABASES['default']; "
        "pool = db.get('OPTIONS', {}).get('pool'); "
        "print(db['CONN_MAX_AGE'], pool and pool['max_size'], db['CONN_HEALTH_CHECKS'])",
        **env,
    )


POSTGRES = "postgres://postgres@127.0.0.1:5432/tradeapp"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": POSTGRES}, "0 10 True"),
        ({"DATABASE_URL": POSTGRES, "DB_POOL_MAX_SIZE": ""}, "0 10 True"),
        ({"DATABASE_URL": POSTGRES, "DB_POOL_MAX_SIZE": "4"}, "0 4 True"),
        # The pool excludes persistent connections (Django refuses both at once).
        ({"DATABASE_URL": POSTGRES, "DB_CONN_MAX_AGE": "600"}, "0 10 True"),
        ({"DATABASE_URL": POSTGRES, "DB_POOL_MAX_SIZE": "0"}, "0 None True"),
        ({"DATABASE_URL": "sqlite:////tmp/served.sqlite3"}, "0 None True"),
    ],
)
def test_served_processes_pool_postgresql_connections_unless_told(env, expected):
    assert _served_database(**env) == expected


def test_without_the_entry_point_nothing_is_pooled():
    printed = _python(
        "from django.conf import settings; db = settings.DATABASES['default']; "
        "print(db['CONN_MAX_AGE'], 'pool' in db.get('OPTIONS', {}))",
        DATABASE_URL=POSTGRES,
    )
    assert printed == "0 False"


@pytest.mark.e2e
def test_a_server_started_like_production_listens_with_the_storm_sized_backlog(tmp_path):
    with cluster(tmp_path, 1, name="serve") as launched:
        server = launched.servers[0]
        assert server.proc.args[1:3] == ["-m", "tradeapp.serve"]
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{server.port}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        # ss shows a listening socket's backlog in its Send-Q column.
        assert listening[0] == "LISTEN"
        assert int(listening[2]) == min(4096, somaxconn)
        assert server.api("GET", "/healthz")[0] == 200


def test_the_served_app_is_loaded_with_the_engine_so_the_first_debate_imports_nothing():
    # daphne imports tradeapp.asgi before it listens: the first debate finds the run, the
    # LangGraph engine and its model already imported (docs/benchmarks.md: first debate).
    out = _python(
        "import sys, tradeapp.asgi; "
        "print(sorted(m for m in ('langgraph.graph', 'langchain_core.language_models', "
        "'debates.engine.graph', 'debates.runs.run') if m in sys.modules))"
    )
    assert out == str(
        sorted(
            [
                "debates.engine.graph",
                "debates.runs.run",
                "langchain_core.language_models",
                "langgraph.graph",
            ]
        )
    )
