"""ESP tracking webhooks: SendGrid's events posted through Django's test client to anymail's
real view, its `tracking` signal recorded by us and processed by the suite's real Celery worker
(bounced -> suppressed, complained -> suppressed and consent withdrawn), once per event id."""

import base64
import json

import pytest
from anymail.signals import tracking

from campaigns.deliverability.esp import esp_event_process
from campaigns.models import Message, Suppression
from campaigns.models.deliverability import EspEvent
from crm.models import Consent
from tests.campaigns.factories import sent_campaign
from tests.conftest import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # SendGrid's tracking payload is the simplest to write by hand (basic auth, a JSON list).
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]
URL = "/webhooks/anymail/sendgrid/tracking/"
SECRET = "esp:s3cret-for-tests"


@pytest.fixture
def esp(settings, workspace):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    campaign = sent_campaign(workspace, n=3)
    messages = list(Message.objects.filter(campaign=campaign).order_by("address"))
    for i, message in enumerate(messages):  # as anymail's message_id came back when sent
        Message.objects.filter(pk=message.pk).update(
            address=message.customer.email, provider_id=f"esp-id-{i}"
        )
    return [Message.objects.get(pk=m.pk) for m in messages]


def post(client, events: list[dict], secret: str = SECRET):
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        URL, json.dumps(events), content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}"
    )


def event(message: Message, kind: str, event_id: str, **fields) -> dict:
    return {"email": message.address, "timestamp": 1764670000, "event": kind,
            "sg_event_id": event_id, **fields}  # fmt: skip


def test_bounce_and_complaint_events_suppress_through_the_worker_once(client, esp, live_worker):
    bounced, complained, _ = esp
    hard = event(bounced, "bounce", "ev-1", anymail_id="esp-id-0", reason="550 5.1.1 no such user")
    # SendGrid's smtp-id is our Message-ID: it names the message by its token.
    spam = event(
        complained, "spamreport", "ev-2", **{"smtp-id": f"<{complained.token.hex}@x.test>"}
    )
    assert post(client, [hard, spam]).status_code == 200
    assert post(client, [hard]).status_code == 200  # the ESP posts it again
    assert EspEvent.objects.count() == 2
    wait_until(lambda: Suppression.objects.count() == 2, timeout=30)
    rows = {s.address: s for s in Suppression.objects.select_related("report")}
    assert rows[bounced.address].reason == "bounced"
    assert rows[bounced.address].report.status == "5.1.1"
    assert rows[bounced.address].report.source == "webhook"
    assert rows[complained.address].reason == "complained"
    consent = Consent.objects.get(customer_id=complained.customer_id, channel="email")
    assert (consent.status, consent.source) == ("complained", "complaint")
    wait_until(lambda: not EspEvent.objects.filter(processed_at__isnull=True).exists(), timeout=30)
    assert set(EspEvent.objects.values_list("outcome", flat=True)) == {"recorded"}


def test_wrong_secret_and_no_secret_are_refused(client, esp, settings):
    assert post(client, [event(esp[0], "bounce", "ev-x")], "esp:wrong").status_code == 400
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    assert post(client, [event(esp[0], "bounce", "ev-x")]).status_code == 404
    assert not EspEvent.objects.exists()


def test_an_event_for_another_recipient_names_no_message(client, esp):
    stray = event(esp[0], "bounce", "ev-3", anymail_id="esp-id-0")
    stray["email"] = "someone.else@example.org"
    post(client, [stray])
    row = EspEvent.objects.get()
    assert esp_event_process(event_id=row.pk) == "no message of ours"
    assert not Suppression.objects.exists()


def test_an_error_while_recording_answers_400_so_the_esp_retries(client, esp):
    def failing(sender, event, esp_name, **_):
        raise RuntimeError("database went away")

    tracking.connect(failing, dispatch_uid="test-failing")
    try:
        response = post(client, [event(esp[0], "bounce", "ev-4")])
    finally:
        tracking.disconnect(dispatch_uid="test-failing")
    assert response.status_code == 400
