"""campaigns.deliverability.mailbox against a real Dovecot (Debian's dovecot-imapd and
dovecot-pop3d, run from a config of the test's own): reports put in the mailbox over IMAP are
recorded, acted on and removed, over IMAP and POP3, and a report found again after a crash is
not acted on twice."""

import os

import pytest
from django_celery_beat.models import PeriodicTask

from campaigns.deliverability import mailbox, schedule, services
from campaigns.models import DeliveryReport, Suppression
from campaigns.models.deliverability import BounceMailbox
from crm.models import Event
from tests.campaigns.deliverability.conftest import ARF_PATH, DSN_PATH, SAMPLES
from tests.dovecot import DOVECOT, PASSWORD, USER, Dovecot

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
    pytest.mark.skipif(
        not os.path.exists(DOVECOT),
        reason="Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)",
    ),
]


@pytest.fixture
def dovecot(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the server is on 127.0.0.1
    server = Dovecot()
    yield server
    server.stop()


def box(workspace, server: Dovecot, protocol: str = "imap") -> BounceMailbox:
    port = server.imap if protocol == "imap" else server.pop3
    row = BounceMailbox(workspace=workspace, protocol=protocol, host="127.0.0.1", port=port,
                        use_tls=False, username=USER)  # fmt: skip
    return services.mailbox_save(mailbox=row, password=PASSWORD)


def reports_for(sent) -> tuple[bytes, bytes, bytes]:
    _, hard_path = sent["person0@example.com"]
    _, arf_path = sent["person1@example.com"]
    hard = (SAMPLES / "hard_user_unknown.eml").read_bytes().replace(DSN_PATH, hard_path.encode())
    arf = (SAMPLES / "complaint_arf.eml").read_bytes().replace(ARF_PATH, arf_path.encode())
    return hard, arf, (SAMPLES / "auto_reply.eml").read_bytes()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_reports_in_the_mailbox_are_recorded_acted_on_and_removed(
    sent, dovecot, workspace, protocol
):
    dovecot.put(*reports_for(sent))
    polled = mailbox.mailbox_poll(mailbox=box(workspace, dovecot, protocol))
    assert (polled.read, polled.recorded, polled.removed) == (3, 2, 3)  # the auto-reply too
    assert dovecot.count() == 0
    assert dict(Suppression.objects.values_list("address", "reason")) == {
        "person0@example.com": "bounced",
        "person1@example.com": "complained",
    }
    assert set(DeliveryReport.objects.values_list("source", flat=True)) == {protocol}


def test_a_report_found_again_after_a_crash_is_acted_on_once(sent, dovecot, workspace):
    hard, _, _ = reports_for(sent)
    row = box(workspace, dovecot)
    dovecot.put(hard)
    assert mailbox.mailbox_poll(mailbox=row).recorded == 1
    # A poll that died after recording but before the delete leaves the same report there.
    dovecot.put(hard)
    again = mailbox.mailbox_poll(mailbox=row)
    assert (again.read, again.recorded, again.removed) == (1, 0, 1)
    assert DeliveryReport.objects.count() == 1 and Suppression.objects.count() == 1
    assert Event.objects.filter(type="email_bounce").count() == 1


def test_each_mailbox_has_a_beat_entry_and_errors_are_kept(dovecot, workspace, settings):
    row = box(workspace, dovecot)
    entry = PeriodicTask.objects.get(name=schedule.entry_name(row.pk))
    assert (entry.task, entry.interval.every, entry.enabled) == (schedule.TASK, 30, True)
    row.active = False
    services.mailbox_save(mailbox=row)
    assert not PeriodicTask.objects.get(pk=entry.pk).enabled
    assert row.password != PASSWORD  # sealed
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(mailbox.MailboxError):
        mailbox.mailbox_poll(mailbox=row)
    assert "loopback" in BounceMailbox.objects.get(pk=row.pk).last_error
    services.mailbox_delete(mailbox=row)
    assert not PeriodicTask.objects.filter(pk=entry.pk).exists()
