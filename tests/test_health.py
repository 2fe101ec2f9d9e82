import pytest

from tests.conftest import free_port


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_database_broker_and_workers(client, live_worker):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["workers"]["ok"]
    assert any(name.startswith(live_worker) for name in body["workers"]["answered"])


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"]["ok"] and not body["broker"]["ok"]
    assert "Connection" in body["broker"]["error"]


def test_healthz_needs_no_login(client, db):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.post("/healthz").status_code == 405
