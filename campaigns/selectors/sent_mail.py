"""A sent message as its recipient got it, for the admin's *Sent mail* pages: from the
development outbox's copy where the file backend kept one (campaigns.channels.outbox), else
rendered again from the ledger row's variant, customer and token, as delivery rendered it
(the same links, the same tracking token). Plain data only.

Rendering again shows the variant and the customer's data as they are now: an edit of the
customer since (a new first name) shows the new value, which the page says."""

from email import message_from_bytes, policy

from django.conf import settings

from campaigns import rendering, tracking
from campaigns.channels import outbox
from campaigns.models import Message

SHOWN = ("id", "campaign_id", "campaign__name", "customer_id", "variant__name", "state",
         "reason", "holdout", "address", "send_at", "sent_at", "opened_at", "clicked_at",
         "provider_id", "attempts")  # fmt: skip
PER_PAGE = 50


def campaign_messages(*, campaign_id: int, page: int = 1) -> dict:
    """One page of a campaign's messages that went out or were tried (not the skipped ones),
    newest first; `more` says whether another page follows."""
    rows = list(
        Message.objects.filter(campaign_id=campaign_id)
        .exclude(state=Message.State.SKIPPED)
        .order_by("-sent_at", "-id")
        .values(*SHOWN)[(page - 1) * PER_PAGE : page * PER_PAGE + 1]
    )
    return {"rows": rows[:PER_PAGE], "page": page, "more": len(rows) > PER_PAGE}


def _outbox_copy(token: str) -> dict | None:
    path = getattr(settings, "EMAIL_FILE_PATH", None)
    if settings.EMAIL_BACKEND != "campaigns.channels.outbox.EmailBackend" or not path:
        return None
    file = outbox.path_for(path, token)
    try:
        raw = file.read_bytes()
    except OSError:
        return None
    mail = message_from_bytes(raw, policy=policy.default)
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    return {
        "subject": str(mail.get("Subject", "")),
        "from": str(mail.get("From", "")),
        "to": str(mail.get("To", "")),
        "text": text.get_content() if text else "",
        "html": html.get_content() if html else "",
        "source": f"the copy in the development outbox ({file.name})",
        "file": file.name,
    }


def message_as_sent(*, message: Message) -> dict:
    """The ledger row `message` (of a campaign the caller may see) as plain data, with what was
    sent: subject, text and HTML (its open pixel taken out), and where they come from."""
    row = Message.objects.filter(pk=message.pk).values(*SHOWN).get()
    token = message.token.hex
    shown = {"message": row, "token": token, "error": "", "note": ""}
    if message.holdout or message.state == Message.State.SKIPPED:
        return {**shown, "note": f"Not sent: {message.reason or 'skipped'}."}
    mail = _outbox_copy(token)
    if mail is None and message.variant_id is None:
        return {**shown, "note": "No variant was chosen for this message yet."}
    if mail is None:
        email = message.campaign.channel == "email"
        try:
            rendered = rendering.compiled(message.variant).render_for(
                message.customer,
                unsubscribe_url=tracking.unsubscribe_url(token),
                preferences_url=tracking.preferences_url(token),
                message_token=token if email else None,
            )
        except Exception as exc:  # a template that fails for this customer: shown to staff
            return {**shown, "error": rendering.render_failure(exc)}
        mail = {
            "subject": rendered.subject,
            "from": message.campaign.from_email,
            "to": row["address"],
            "text": rendered.text,
            "html": rendered.html,
            "source": "rendered again from the variant and the customer's data as they are "
            "now, with the message's own links",
            "file": "",
        }
        if message.enrolment_id:
            mail["source"] += " (the journey's trigger details are not filled in again)"
    if message.state != Message.State.SENT:
        why = f": {message.reason}" if message.reason else ""
        shown["note"] = f"Not sent yet ({message.state}{why})."
    return {**shown, "mail": {**mail, "html": rendering.without_pixel(mail["html"], token)}}
