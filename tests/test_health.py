import pytest
from django.contrib.auth import get_user_model

from tests.conftest import free_port

TOKEN = "monitor-token-0123456789abcdef"


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_database_broker_and_workers(client, live_worker, settings):
    settings.HEALTHZ_TOKEN = TOKEN
    response = client.get("/healthz", headers={"X-Healthz-Token": TOKEN})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["workers"]["ok"]
    assert any(name.startswith(live_worker) for name in body["workers"]["answered"])


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.HEALTHZ_TOKEN = TOKEN
    response = client.get("/healthz", headers={"X-Healthz-Token": TOKEN})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"]["ok"] and not body["broker"]["ok"]
    assert "Connection" in body["broker"]["error"]
    # The public learns that this node is down, not where its broker lives.
    public = client.get("/healthz")
    assert public.status_code == 503 and public.json() == {"status": "down"}


def test_healthz_needs_no_login(client, db):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_healthz_details_only_for_staff_or_the_token(client, settings):
    settings.HEALTHZ_TOKEN = TOKEN
    anonymous = client.get("/healthz").json()
    assert set(anonymous) == {"status"}
    wrong = client.get("/healthz", headers={"X-Healthz-Token": TOKEN[:-1] + "x"}).json()
    assert set(wrong) == {"status"}

    users = get_user_model().objects
    client.force_login(users.create_user("customer", password="pw-for-tests"))
    assert set(client.get("/healthz").json()) == {"status"}  # signed in is not staff
    client.force_login(users.create_user("ops", password="pw-for-tests", is_staff=True))
    detailed = client.get("/healthz").json()
    assert {"status", "database", "broker", "workers"} <= set(detailed)
    assert detailed["database"]["vendor"]


@pytest.mark.django_db
def test_healthz_token_unset_accepts_no_token(client, settings):
    settings.HEALTHZ_TOKEN = ""
    assert set(client.get("/healthz", headers={"X-Healthz-Token": ""}).json()) == {"status"}
