"""campaigns.protection.throttle: per recipient-domain limits and backoff, shared in Redis, and
delivery putting a throttled domain's messages back in the queue while the others go on."""

import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.protection import throttle
from tests.campaigns.factories import make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("reason", "throttling"),
    [
        ("RCPT: 421 4.7.28 [1.2.3.4] Our system has detected an unusual rate of mail", True),
        ("RCPT: 452 4.5.3 Too many recipients", True),
        ("MAIL: 421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred", True),
        ("end of data: 451 4.7.650 The mail server has been temporarily rate limited", True),
        ("RCPT: 451 4.7.1 Greylisted, try again later", False),  # per message, not per domain
        ("RCPT: 550 5.1.1 No such mailbox", False),
        ("cannot connect: [Errno 111] Connection refused", False),
    ],
)
def test_throttling_replies_are_told_from_other_refusals(reason, throttling):
    assert throttle.is_throttling(reason) is throttling


def test_addresses_fall_into_provider_groups_or_their_own_domain():
    assert throttle.group_of("A@GoogleMail.com") == throttle.group_of("b@gmail.com") == "gmail"
    assert throttle.group_of("c@hotmail.com") == "microsoft"
    assert throttle.group_of("d@shop.example") == "shop.example"


def gate(settings) -> throttle.DomainGate:
    settings.CAMPAIGN_THROTTLE_BASE_SECONDS = 0.3
    settings.CAMPAIGN_THROTTLE_START_RATE = 20
    return throttle.DomainGate(workspace_id=uuid.uuid4().int % 10**9)


def test_a_throttled_group_cools_down_with_growing_delay_and_others_go_on(settings):
    g = gate(settings)
    assert g.admit("a@gmail.com") == 0
    first = g.throttled("a@gmail.com")
    assert 0.25 < first < 0.4
    assert g.admit("b@gmail.com") > 0.2  # the whole group waits
    assert g.admit("c@hotmail.com") == 0  # another provider does not
    # A second reply during the same cool-down does not lengthen it ...
    assert g.throttled("b@googlemail.com") < 0.4
    time.sleep(first + 0.05)
    # ... one after it does: the delay doubles.
    assert 0.5 < g.throttled("d@gmail.com") < 0.7
    assert g.state("x@gmail.com")["level"] == 2


def test_after_a_cool_down_the_group_sends_at_a_cut_rate(settings):
    g = gate(settings)
    g.throttled("a@gmail.com")
    time.sleep(0.35)
    other = throttle.DomainGate(workspace_id=int(g.prefix.split(":")[2]))  # a second worker
    admitted = 0
    for _ in range(40):
        admitted += g.admit("a@gmail.com") == 0 or other.admit("a@gmail.com") == 0
    # Level 1 from no limit: START_RATE (20/s), a burst of one second's worth at most.
    assert 15 <= admitted <= 24
    assert all(g.admit("z@hotmail.com") == 0 for _ in range(40))


class Throttling:
    """An SMTP server that answers 421 4.7.28 at RCPT for one domain for its first `seconds`."""

    def __init__(self, domain: str, seconds: float) -> None:
        self.domain, self.until = domain, time.monotonic() + seconds
        self.accepted: Counter = Counter()
        self.refused = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address.endswith("@" + self.domain) and time.monotonic() < self.until:
            self.refused += 1
            return "421 4.7.28 Our system has detected an unusual rate of mail, rate limited"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.accepted.update(envelope.rcpt_tos)
        return "250 2.0.0 OK"


def serve_smtp(server, settings) -> Controller:
    """`server` on a free port, and Django's SMTP backend pointed at it (no TLS, no login)."""
    port = free_port()
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    return controller


def campaign_a_third_at(workspace, recipients: int, domain: str) -> Campaign:
    """A scheduled broadcast with its ledger written, every third recipient at `domain`."""
    from campaigns.services.recipients import build_ledger

    campaign = make_campaign(workspace, make_audience(workspace, recipients))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    build_ledger(campaign=campaign)
    rows = list(Message.objects.filter(campaign=campaign).select_related("customer"))
    for m in rows[::3]:
        m.customer.email = m.customer.email.replace("example.com", domain)
        m.customer.save(update_fields=["email"])
    return campaign


@pytest.mark.django_db(transaction=True)  # the hand-off commits itself
def test_a_throttled_domain_waits_and_every_message_arrives_once(workspace, settings):
    server = Throttling("slow.example", seconds=1.0)
    controller = serve_smtp(server, settings)
    settings.CAMPAIGN_RETRY_BASE_SECONDS, settings.CAMPAIGN_RETRY_MAX_SECONDS = 0.05, 0.2
    settings.CAMPAIGN_THROTTLE_BASE_SECONDS = 0.3
    settings.CAMPAIGN_THROTTLE_START_RATE = 200
    try:
        campaign = campaign_a_third_at(workspace, 120, "slow.example")
        deliver_until_done(campaign, rounds=200)
    finally:
        controller.stop()
    sent = Message.objects.filter(campaign=campaign, state="sent")
    assert sent.count() == 120
    assert set(server.accepted.values()) == {1} and len(server.accepted) == 120
    assert server.refused >= 1
    # Met a throttling reply or waited for the domain, but never used up its attempts.
    assert max(sent.values_list("attempts", flat=True)) < 6


def test_a_421_that_closes_the_connection_is_read_as_the_providers_refusal():
    """Gmail answers a pipelined RCPT with 421 4.7.28 and hangs up before the DATA answer."""
    import socket
    import threading

    from campaigns.channels.smtp import EmailBackend

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"220 mx ESMTP\r\n")
        conn.recv(1000)  # EHLO
        conn.sendall(b"250-mx\r\n250 PIPELINING\r\n")
        received = b""
        while b"DATA\r\n" not in received:
            received += conn.recv(1000)
        conn.sendall(b"250 OK\r\n421 4.7.28 Unusual rate of mail; rate limited\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    backend = EmailBackend(host="127.0.0.1", port=port, use_tls=False, fail_silently=False)
    outcome = backend.send_bytes(
        sender="shop@example.com",
        recipients=["a@gmail.com"],
        data=b"Subject: x\r\n\r\nhi\r\n",
        hand_off=lambda point_of_no_return: pytest.fail("nothing may be handed off"),
    )
    listener.close()
    assert outcome.kind == "retry" and outcome.reason.startswith("RCPT: 421 4.7.28")
    assert throttle.is_throttling(outcome.reason)


def _evals() -> int:
    from marketing_ai import kv

    return int(kv.client().info("commandstats").get("cmdstat_eval", {}).get("calls", 0))


def test_a_group_found_cooling_is_not_asked_about_again_until_its_cool_down_ends(settings):
    g = gate(settings)
    g.throttled("a@gmail.com")
    before = _evals()
    waits = [g.admit(f"r{i}@gmail.com") for i in range(50)]
    assert _evals() - before == 1  # one round trip for the chunk's 50 messages, not 50
    assert all(w > 0.2 for w in waits)
    assert waits == sorted(waits) and waits[-1] - waits[0] > 1  # spread at the group's rate
    assert g.admit("z@hotmail.com") == 0
    time.sleep(0.35)
    assert g.admit("a@gmail.com") == 0  # asked again once the cool-down it was told of ended


@pytest.mark.django_db(transaction=True)  # the hand-off commits itself
def test_after_a_421_the_domains_queued_messages_wait_in_the_queue_unclaimed(workspace, settings):
    """A domain that answers 421 has the campaign's other messages to it moved past its
    cool-down in one UPDATE: the chunks that follow are the other domains' messages alone, not
    a third of them claimed and put back one by one."""
    server = Throttling("slow.example", seconds=30.0)
    controller = serve_smtp(server, settings)
    settings.CAMPAIGN_THROTTLE_BASE_SECONDS = 60
    settings.CAMPAIGN_CHUNK = 10
    try:
        from campaigns.services.delivery import deliver

        campaign = campaign_a_third_at(workspace, 90, "slow.example")
        deliver(campaign_id=campaign.pk, budget_seconds=30)
    finally:
        controller.stop()
    slow = Message.objects.filter(campaign=campaign, customer__email__endswith="@slow.example")
    assert Message.objects.filter(campaign=campaign, state="sent").count() == 60
    assert set(server.accepted.values()) == {1} and len(server.accepted) == 60
    assert server.refused == 1
    assert not slow.exclude(state="queued").exists()
    assert min(slow.values_list("send_at", flat=True)) > timezone.now() + timedelta(seconds=50)
    # Only the slow messages of the chunk that met the 421 were ever claimed (at most 10 of 30).
    assert slow.filter(claimed_at__isnull=False).count() <= 10
    assert max(slow.values_list("attempts", flat=True)) <= 1
