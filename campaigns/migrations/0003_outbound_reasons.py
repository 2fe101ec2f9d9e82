"""Scrubs the answer bodies that webhook deliveries and SMS/webhook messages used to log.

Before campaigns.outbound, a failed call stored "HTTP 500: <first 200 characters of the body>"
(and exception texts); an endpoint pointed at an internal page had that page readable through
/api/v1/webhooks/<id>/deliveries. Rows written since keep a short fixed reason; this turns the
old ones into the same reasons, so the upgrade closes what was already stored too."""

import re

from django.db import migrations

HTTP_BODY = re.compile(r"^HTTP ([0-9]{3}): .*\Z", re.S)
EXCEPTION = re.compile(r"^([A-Za-z]+): .*\Z", re.S)
GAVE_UP = re.compile(r"^(gave up after [0-9]+ attempts: )(.*)\Z", re.S)
EXCEPTION_REASONS = {
    "ConnectTimeout": "timeout", "ReadTimeout": "timeout", "Timeout": "timeout",
    "SSLError": "TLS error", "ConnectionError": "connection failed",
    "ProxyError": "connection failed",
}  # fmt: skip
REQUESTS_ERRORS = {
    *EXCEPTION_REASONS, "RequestException", "TooManyRedirects", "ChunkedEncodingError",
    "ContentDecodingError", "InvalidURL", "InvalidSchema", "MissingSchema", "InvalidHeader",
    "RetryError", "InvalidJSONError", "Refused",
}  # fmt: skip
CANDIDATES = r"^(gave up after [0-9]+ attempts: )?(HTTP [0-9]{3}: |[A-Za-z]+: )"


def short(reason: str) -> str:
    """The reason the current code would have logged for an old one; others unchanged."""
    gave_up = GAVE_UP.match(reason)
    prefix, rest = (gave_up[1], gave_up[2]) if gave_up else ("", reason)
    if match := HTTP_BODY.match(rest):
        return f"{prefix}HTTP {match[1]}"
    if (match := EXCEPTION.match(rest)) and match[1] in REQUESTS_ERRORS:
        return prefix + EXCEPTION_REASONS.get(match[1], "request failed")
    return reason


def _rewrite(queryset, field: str) -> None:
    changed = []
    for row in queryset.filter(**{f"{field}__regex": CANDIDATES}).only("pk", field).iterator():
        new = short(getattr(row, field))
        if new != getattr(row, field):
            setattr(row, field, new)
            changed.append(row)
        if len(changed) >= 1000:
            queryset.model.objects.bulk_update(changed, [field])
            changed = []
    if changed:
        queryset.model.objects.bulk_update(changed, [field])


def scrub(apps, schema_editor) -> None:
    WebhookDelivery = apps.get_model("campaigns", "WebhookDelivery")  # noqa: N806
    Message = apps.get_model("campaigns", "Message")  # noqa: N806
    _rewrite(WebhookDelivery.objects.all(), "error")
    # E-mail reasons are SMTP's own words; only the HTTP channels logged bodies.
    _rewrite(Message.objects.filter(campaign__channel__in=["sms", "webhook"]), "reason")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_brandrules")]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop, elidable=True)]
