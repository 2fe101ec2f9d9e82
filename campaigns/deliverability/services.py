"""Writes for sending domains (a domain added with a fresh DKIM key, a key replaced) and for
bounce mailboxes (saved with their beat entry)."""

from django.db import transaction
from django.utils import timezone

from campaigns.deliverability import schedule, signing
from campaigns.models import SendingDomain
from campaigns.models.deliverability import BounceMailbox
from crm.models import Workspace
from marketing_ai.sealed import seal


def _selector(now) -> str:
    # Dated to the minute: a new key gets a new DNS name, so mail signed with the old key
    # while the new record propagates still finds the old one.
    return f"mai{now:%Y%m%d%H%M}"


@transaction.atomic
def sending_domain_create(
    *, workspace: Workspace, domain: str, bounce_domain: str = ""
) -> SendingDomain:
    """A sending domain with a fresh key, not yet signing (its record is not published yet)."""
    now = timezone.now()
    key = signing.key_generate()
    return SendingDomain.objects.create(
        workspace=workspace,
        domain=domain.strip().lower(),
        bounce_domain=bounce_domain.strip().lower(),
        selector=_selector(now),
        private_key=seal(key.private_pem),
        public_key=key.public_b64,
        key_created_at=now,
        signing=False,
    )


@transaction.atomic
def sending_domain_new_key(*, sending_domain: SendingDomain) -> SendingDomain:
    """Replaces the key under a new selector and stops signing until the new record is
    published (staff tick `signing` again)."""
    now = timezone.now()
    # A new DNS name for every key, also several within a minute (base, base n2, base n3, …).
    selector = _selector(now)
    if sending_domain.selector.startswith(selector):
        tail = sending_domain.selector[len(selector) :]
        count = int(tail[1:]) if tail[:1] == "n" and tail[1:].isdigit() else 1
        selector = f"{selector}n{count + 1}"
    key = signing.key_generate()
    sending_domain.selector = selector
    sending_domain.private_key = seal(key.private_pem)
    sending_domain.public_key = key.public_b64
    sending_domain.key_created_at = now
    sending_domain.signing = False
    sending_domain.save(
        update_fields=["selector", "private_key", "public_key", "key_created_at", "signing"]
    )
    return sending_domain


@transaction.atomic
def mailbox_save(*, mailbox: BounceMailbox, password: str | None = None) -> BounceMailbox:
    """Saves a bounce mailbox (the password sealed, when a new one is given) and writes its beat
    entry in the same transaction."""
    mailbox.host = mailbox.host.strip().lower()
    if password is not None:
        mailbox.password = seal(password)
    mailbox.save()
    schedule.mailbox_schedule(mailbox=mailbox)
    return mailbox


@transaction.atomic
def mailbox_delete(*, mailbox: BounceMailbox) -> None:
    schedule.mailbox_unschedule(mailbox_id=mailbox.pk)
    mailbox.delete()
