"""campaigns.channels.email and campaigns.channels.mime: an e-mail is multipart (text and HTML)
with one-click unsubscribe headers, and a header with a line break is refused."""

import email

import pytest

from campaigns.channels import Outgoing, mime
from campaigns.channels.email import EmailChannel


def test_email_is_multipart_with_one_click_unsubscribe_headers(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    channel = EmailChannel()
    outgoing = Outgoing(
        message_id=1,
        token="ab" * 16,
        address="ann@example.com",
        subject="Zoë’s picks",
        html="<p>Hi <b>Ann</b></p>",
        text="Hi Ann",
    )
    headers = channel.headers(outgoing)
    data = mime.build(
        sender="Shop <shop@example.com>",
        to=outgoing.address,
        subject=outgoing.subject,
        text=outgoing.text,
        html=outgoing.html,
        message_id=headers.pop("Message-ID"),
        boundary=outgoing.token,
        headers=headers,
    )
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Zoë’s picks"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"].startswith("<http") and "/u/" in parsed["List-Unsubscribe"]
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hi <b>Ann</b></p>"
    with pytest.raises(mime.HeaderInjection):
        mime.build(
            sender="a@b.c",
            to="x@y.z",
            subject="hi\r\nBcc: all@example.com",
            text="t",
            html="",
            message_id="<1@x>",
            boundary="b",
        )
