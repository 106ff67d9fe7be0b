"""The production Docker files: a non-root multi-stage image, two daphne processes behind nginx,
started by the production entry point."""

from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def test_dockerfile_is_multi_stage_and_non_root():
    text = (DOCKER / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2
    assert "USER app" in text
    assert "COPY --from=build" in text
    assert "exec python -m tradeapp.serve" in (DOCKER / "entrypoint.sh").read_text()


def test_compose_runs_two_daphne_processes_on_shared_postgres_and_redis():
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web1", "web2"} <= set(services)
    webs = [services["web1"], services["web2"]]
    for web in webs:
        assert web["command"] == ["daphne"]
        assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    urls = {(w["environment"]["DATABASE_URL"], w["environment"]["REDIS_URL"]) for w in webs}
    assert len(urls) == 1
    database_url, redis_url = urls.pop()
    assert database_url.startswith("postgres://")
    assert "@postgres:" in database_url
    assert redis_url.startswith("redis://redis:")
    assert services["migrate"]["command"] == ["migrate"]


def test_compose_serves_through_nginx_with_the_repository_config_and_daphne_hidden_behind_it():
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    services = compose["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert "./nginx.conf:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    assert proxy["environment"]["TRADEAPP_UPSTREAM_SERVERS"] == (
        "server web1:8000; server web2:8000;"
    )
    assert set(proxy["depends_on"]) == {"web1", "web2"}
    for name in ("web1", "web2"):
        assert "ports" not in services[name]  # reachable only through the proxy
        assert services[name]["environment"]["WS_TRUSTED_PROXIES"] == "1"
    template = (DOCKER / "nginx.conf").read_text()
    assert "${NGINX_PORT}" in template
    assert "${TRADEAPP_UPSTREAM_SERVERS}" in template
