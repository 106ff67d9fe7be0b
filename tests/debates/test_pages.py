"""The HTML page views (server side): every page renders its shell with the right data."""

import pytest
from django.test import override_settings

PAGES = [
    "/signin/",
    "/debates/",
    "/debates/5b1c8a9e-1f2e-4c1e-9b9e-111111111111/",
    "/track-record/",
]


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_without_a_session(client, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert '<main id="main"' in body
    assert 'type="module"' in body
    assert "https://" not in body, "no external CDN"


def test_the_list_links_to_the_track_record_which_labels_sample_data(client):
    assert 'href="/track-record/"' in client.get("/debates/").content.decode()
    body = client.get("/track-record/").content.decode()
    assert 'id="track-sample"' in body
    assert "Sample market data" in body
    assert "js/track-record.js" in body


def test_home_redirects_to_the_list(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/debates/"


@override_settings(WS_PING_INTERVAL_S=12.5)
def test_watch_page_carries_the_debate_id_and_heartbeat_interval(client):
    debate_id = "5b1c8a9e-1f2e-4c1e-9b9e-111111111111"
    body = client.get(f"/debates/{debate_id}/").content.decode()
    assert f'data-debate-id="{debate_id}"' in body
    assert 'data-ping-interval-ms="12500"' in body
    assert 'aria-live="polite"' in body


def test_watch_page_refuses_a_malformed_id(client):
    assert client.get("/debates/not-a-uuid/").status_code == 404


def test_static_client_module_is_served(client):
    response = client.get("/static/js/debate-socket.js")
    assert response.status_code == 200
    assert b"export class DebateSocket" in b"".join(response.streaming_content)
