"""Reading the reports that come back: bounces and spam complaints, as (address, kind) records.

Pure Python (the stdlib `email` package and flufl.bounce), no Django: the receivers (mailbox,
LMTP, webhooks) hand raw messages in, the services act on what comes out.

In order:
1. RFC 3464 delivery status notifications (multipart/report with message/delivery-status):
   one record per recipient block whose Action is failed (hard) or delayed (soft); where an
   MTA left Action out, the Status class decides (5.x.x hard, 4.x.x soft). Action wins over the
   Status class because "failed" is the MTA's final word: it gave up (a 4.4.7 "expired" too).
2. RFC 5965 feedback reports (message/feedback-report): a complaint about the recipient the
   report or the returned message names.
3. Anything else through flufl.bounce's detectors (Exim, qmail, Postfix, Yahoo, SimpleMatch
   ...), whose permanent failures are hard and temporary ones soft.

Where the report reached us through a signed VERP return path (campaigns.deliverability.verp),
or the returned message carries one, its message token goes on every record: the token, not
the parsed address, says whose message it was.
"""

import email
import email.message
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

HARD, SOFT, COMPLAINT = "hard", "soft", "complaint"
EXCERPT_CHARS = 300
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SPACE = re.compile(r"\s+")
# Headers of the report (and of the returned original) where a return path may be named.
_ROUTE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "to", "return-path")
# Not complaints: RFC 5965's "not-spam" is a user taking a message out of the spam folder.
_NOT_COMPLAINTS = {"not-spam"}
# What a detector's find must look like to be an address (they also return "c=us;a=" from X.400
# lines, or a redacted "david...@gmail.com").
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAUSIBLE = re.compile(rf"{_ATOM}(\.{_ATOM})*@[a-z0-9-]+(\.[a-z0-9-]+)+")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")


@dataclass(frozen=True)
class Report:
    address: str  # lower case; "" where the report redacted it and the token says whose it was
    kind: str  # hard | soft | complaint
    status: str  # "5.1.1", "4.4.7", a feedback type such as "abuse", or "" if none given
    excerpt: str  # what the report says about it, whitespace folded, at most 300 characters
    token: str | None = None  # the message's token where a signed return path named it


def parse(
    raw: bytes | str | email.message.Message,
    *,
    recipients: Iterable[str] = (),
    read_token: Callable[[str], str | None] | None = None,
) -> list[Report]:
    """The failures and complaints a report states, one record per address.

    `recipients` are the envelope recipients it arrived for (an LMTP/SMTP RCPT, a mailbox's
    Delivered-To); `read_token` turns a return path into a message token (None if it is not a
    return path we signed). Returns [] for anything that states no failure: an auto-reply, a
    success notice, a "delayed, still trying" for nobody."""
    message = _message(raw)
    records = _dsn(message)
    if records is None:
        records = _feedback(message)
    if records is None:
        records = _detected(message)
    token = _token(message, recipients, read_token) if read_token else None
    unique: dict[tuple[str, str], Report] = {}
    for record in records:
        unique.setdefault((record.address, record.kind), record)
    return [
        Report(r.address, r.kind, r.status, r.excerpt, token)
        for r in unique.values()
        if r.address or token
    ]


def _message(raw) -> email.message.Message:
    if isinstance(raw, email.message.Message):
        return raw
    if isinstance(raw, str):
        return email.message_from_string(raw)
    return email.message_from_bytes(raw)


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip()[:EXCERPT_CHARS]


def _address(value: str | None) -> str:
    """An address from a DSN field ("rfc822; a@b.c", "<a@b.c>", "a@b.c (comment)")."""
    if not value:
        return ""
    kind, sep, rest = str(value).partition(";")
    if sep and kind.strip().lower() != "rfc822":
        return ""  # an X.400 or other non-Internet address: nothing we sent to
    address = parseaddr(rest if sep else kind)[1].strip().lower()
    return address if _PLAUSIBLE.fullmatch(address) else ""


def _parts(message: email.message.Message, maintype: str, subtype: str):
    for part in message.walk():
        if part.get_content_maintype() == maintype and part.get_content_subtype() == subtype:
            yield part


def _dsn(message: email.message.Message) -> list[Report] | None:
    """Records of the message/delivery-status parts, or None where they name no recipient we
    can read (no recipient fields, or only X.400 ones): the detectors then read the text."""
    blocks = []
    for part in _parts(message, "message", "delivery-status"):
        payload = part.get_payload()
        if isinstance(payload, list):
            # Recipient blocks are those with a recipient field: a whitespace-only line (seen in
            # the wild) merges the per-message block into the first one.
            blocks += [b for b in payload if any(f in b for f in _RECIPIENT_FIELDS)]
    records, named = [], False
    for block in blocks:
        address = _address(block.get("original-recipient")) or _address(
            block.get("final-recipient") or block.get("x-actual-recipient")
        )
        named = named or bool(address)
        kind = _dsn_kind(block.get("action", ""), block.get("status", ""))
        if kind is None or not address:
            continue
        found = _STATUS.search(str(block.get("status", "")))
        status = ".".join(found.groups()) if found else ""
        excerpt = block.get("diagnostic-code") or block.get("status") or ""
        records.append(Report(address, kind, status, _fold(str(excerpt))))
    return records if named else None


def _dsn_kind(action, status) -> str | None:
    action = str(action).strip().lower()
    if action.startswith(("fail", "error")):  # "failure", opensmtpd's "error": seen in the wild
        return HARD
    if action.startswith("delay"):
        return SOFT
    if action:
        return None  # delivered, relayed, expanded: not a failure
    found = _STATUS.search(str(status))
    if not found:
        return None
    return {"5": HARD, "4": SOFT}.get(found.group(1))


def _feedback(message: email.message.Message) -> list[Report] | None:
    """A complaint per RFC 5965 report part, or None if the message holds none."""
    reports = list(_parts(message, "message", "feedback-report"))
    if not reports:
        return None
    records = []
    for part in reports:
        fields = _fields(part)
        feedback_type = (fields.get("feedback-type") or "abuse").strip().lower()
        if feedback_type in _NOT_COMPLAINTS:
            continue
        addresses = [_address(a) for a in fields.get_all("original-rcpt-to") or []]
        # Feedback loops often redact the recipient: "" then stands for "whoever the signed
        # return path names" (kept only where one does).
        addresses = [a for a in addresses if a] or _returned_recipients(message) or [""]
        excerpt = _fold(
            f"{feedback_type} report from {fields.get('user-agent') or 'unknown agent'}"
            f"{'; ' + str(fields.get('source-ip')) if fields.get('source-ip') else ''}"
        )
        records += [Report(a, COMPLAINT, feedback_type, excerpt) for a in addresses]
    return records


def _fields(part: email.message.Message) -> email.message.Message:
    """A message/feedback-report part's fields as one header block."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    return email.message_from_string(payload if isinstance(payload, str) else "")


def _returned(message: email.message.Message) -> list[email.message.Message]:
    """The returned original(s): message/rfc822 parts, or text/rfc822-headers read as headers."""
    found = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            found += [p for p in payload if isinstance(p, email.message.Message)]
        elif ctype == "text/rfc822-headers":
            found.append(email.message_from_string(part.get_payload(decode=True).decode(
                part.get_content_charset() or "utf-8", "replace")))  # fmt: skip
    return found


def _returned_recipients(message: email.message.Message) -> list[str]:
    return [
        a.lower()
        for original in _returned(message)
        for _, a in getaddresses(original.get_all("to") or [])
        if _PLAUSIBLE.fullmatch(a.lower())
    ]


def _detected(message: email.message.Message) -> list[Report]:
    """flufl.bounce's detectors (heuristics for formats before or outside RFC 3464), in its own
    order, stopping at the first that finds something, as its all_failures does; without its
    DSN detector, which _dsn replaces (it would stop the search at a DSN that names only
    X.400 recipients, before the Exchange detector that reads the text)."""
    from flufl.bounce._detectors.dsn import DSN  # noqa: PLC0415  (loads its 17 detectors)
    from flufl.bounce._scan import _find_detectors  # noqa: PLC0415  (pinned: flufl.bounce==4.0)

    temporary, permanent = set(), set()
    for detector in _find_detectors():
        if detector is DSN:
            continue
        try:
            found = detector().process(message)
        except Exception:  # noqa: BLE001, S112  (a detector tripping on odd input found nothing)
            continue
        temporary, permanent = ({a for a in group if _plausible(a)} for group in found)
        if temporary or permanent:  # a find that is no address lets the next detector try
            break
    records = []
    for kind, found in ((HARD, permanent), (SOFT, temporary - permanent)):
        for raw_address in sorted(found):
            text = (
                raw_address.decode("ascii", "replace")
                if isinstance(raw_address, bytes)
                else raw_address
            )
            address = parseaddr(text)[1].strip().lower()
            records.append(
                Report(address, kind, _status_near(message, address), _excerpt(message, address))
            )
    return records


def _plausible(found) -> bool:
    text = found.decode("ascii", "replace") if isinstance(found, bytes) else str(found)
    return bool(_PLAUSIBLE.fullmatch(parseaddr(text)[1].strip().lower()))


def _body_text(message: email.message.Message) -> str:
    texts = []
    for part in message.walk():
        if (
            part.get_content_maintype() == "text"
            and part.get_content_type() != "text/rfc822-headers"
        ):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode(part.get_content_charset() or "latin-1", "replace"))
        if part.get_content_type() == "message/rfc822":
            break  # the returned original says nothing about the failure
    return "\n".join(texts)


def _status_near(message: email.message.Message, address: str) -> str:
    text = _body_text(message)
    at = text.lower().find(address)
    window = text[max(0, at - 200) : at + 400] if at >= 0 else text[:2000]
    found = _STATUS.search(window)
    return ".".join(found.groups()) if found else ""


def _excerpt(message: email.message.Message, address: str) -> str:
    text = _body_text(message)
    at = text.lower().find(address)
    return _fold(text[max(0, at - 60) : at + EXCERPT_CHARS] if at >= 0 else text)


def _token(message, recipients, read_token) -> str | None:
    candidates = list(recipients)
    for source in (message, *_returned(message)):
        for header in _ROUTE_HEADERS:
            candidates += [a for _, a in getaddresses(source.get_all(header) or [])]
    for candidate in candidates:
        token = read_token(candidate)
        if token:
            return token
    return None
