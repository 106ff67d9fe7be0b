"""The server launcher without servers: command lines, socket paths, environment, databases."""

import sys

import pytest

from bench import launcher
from bench.launcher import Cluster, ServerOptions, server_command

APP = "tradeapp.asgi:application"


def test_daphne_starts_through_the_production_entry_point_with_only_the_options_asked_for():
    assert server_command("daphne", 8001, ServerOptions()) == [
        sys.executable,
        "-m",
        "tradeapp.serve",
        "--host",
        "127.0.0.1",
        "--port",
        "8001",
    ]
    bench = ServerOptions(ping=(1, 2), backlog=64, connect_timeout=120, quiet=True)
    command = server_command("daphne", 8001, bench)
    assert command[7:] == [
        "--backlog",
        "64",
        "--ping-interval",
        "1",
        "--ping-timeout",
        "2",
        "--connect-timeout",
        "120",
        "--no-access-log",
    ]


def test_uvicorn_gets_the_same_options_in_its_own_words():
    command = server_command("uvicorn", 8002, ServerOptions(ping=(1, 2), backlog=64, quiet=True))
    assert command[:4] == [sys.executable, "-m", "uvicorn", APP]
    text = " ".join(command)
    assert "--host 127.0.0.1 --port 8002" in text
    assert "--ws-ping-interval 1 --ws-ping-timeout 2" in text
    assert "--no-access-log --log-level warning" in text
    assert "--backlog 64" in text
    assert "--interface asgi3" in text  # the serving wrapper's __call__ is synchronous


def test_an_unknown_server_kind_is_refused():
    with pytest.raises(ValueError, match="gunicorn"):
        server_command("gunicorn", 8003, ServerOptions())


def test_ws_path_carries_the_token_and_resume_point_when_given():
    assert launcher.ws_path("d1") == "/ws/debate/d1/"
    assert launcher.ws_path("d1", "tok") == "/ws/debate/d1/?token=tok"
    assert launcher.ws_path("d1", "tok", 7) == "/ws/debate/d1/?token=tok&lastSeq=7"
    assert launcher.ws_path("d1", None, 0) == "/ws/debate/d1/?lastSeq=0"


def test_server_env_prefixes_redis_per_cluster_and_lets_extra_win(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere/0")
    alone = launcher.server_env(database_url="sqlite:///x", prefix="p1")
    assert "REDIS_URL" not in alone  # one process: the in-memory layer
    assert "STREAMING_KEY_PREFIX" not in alone

    env = launcher.server_env(
        database_url="sqlite:///x",
        redis_url="redis://127.0.0.1:6379/9",
        prefix="p1",
        qa_token="qa",
        origins="http://127.0.0.1:9",
        metrics_dir=tmp_path,
        extra={"WS_ALLOWED_ORIGINS": "http://other"},
    )
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379/9"
    assert env["STREAMING_KEY_PREFIX"] == env["CHANNEL_LAYER_PREFIX"] == "p1"
    assert env["WS_QA_TOKEN"] == "qa"
    assert env["WS_ALLOWED_ORIGINS"] == "http://other"
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert env["DATABASE_URL"] == "sqlite:///x"


def test_a_fresh_database_without_postgres_is_a_sqlite_file_in_the_run_dir(tmp_path):
    with launcher.fresh_database(tmp_path, "c1", "") as url:
        assert url == f"sqlite:///{tmp_path / 'c1.sqlite3'}"


def test_a_cluster_uses_the_ports_chosen_beforehand_and_its_qa_token(tmp_path):
    cluster = Cluster(tmp_path, name="t", ports=[8101, 8102], qa_token="qa", user=("u", "p"))

    assert [s.port for s in cluster.servers] == [8101, 8102]
    assert cluster.prefix.startswith("t-")
    server = cluster.servers[1]
    assert server.base_url == "http://127.0.0.1:8102"
    assert server.ws_url("d1") == "ws://127.0.0.1:8102/ws/debate/d1/?token=qa"
    assert (
        server.ws_url("d1", token=None, last_seq=3) == "ws://127.0.0.1:8102/ws/debate/d1/?lastSeq=3"
    )
    assert server.stdout_path.parent == server.stderr_path.parent == tmp_path
    assert not server.alive()
    cluster.close()  # nothing started: nothing to stop


def test_several_redis_nodes_reach_the_servers_as_redis_urls(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere/0")
    env = launcher.server_env(redis_url="redis://a:1/0, redis://b:2/0", prefix="p")
    assert env["REDIS_URLS"] == "redis://a:1/0, redis://b:2/0"
    assert "REDIS_URL" not in env
    assert launcher.redis_nodes("redis://a:1/0, redis://b:2/0") == [
        "redis://a:1/0",
        "redis://b:2/0",
    ]
    one = launcher.server_env(redis_url="redis://a:1/0", prefix="p")
    assert one["REDIS_URL"] == "redis://a:1/0"
    assert "REDIS_URLS" not in one
