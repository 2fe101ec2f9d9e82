"""Delivery channels. A channel turns a rendered message into a delivery attempt.

A new channel is a new class with `send(outgoing, hand_off) -> Outcome`, named in the
CAMPAIGN_CHANNELS setting. `hand_off(point_of_no_return)` commits the ledger row as sent and then
runs `point_of_no_return`; a channel that can split its provider call (SMTP) calls it right before
the step that makes the message final, one that cannot (an HTTP API) calls it after the call
succeeded and sends an Idempotency-Key so the receiver can drop a repeat.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass
class Outgoing:
    message_id: int
    token: str
    address: str
    subject: str
    html: str
    text: str
    from_email: str = ""
    headers: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    workspace_id: int | None = None  # whose sending domain signs it (e-mail)


@dataclass(frozen=True)
class Outcome:
    """What happened to one message. kind: sent | retry | failed | lost_claim."""

    kind: str
    reason: str = ""
    provider_id: str = ""
    after_hand_off: bool = False  # the ledger already says `sent` (retry/failed must revert it)
    suppress: bool = False  # the address is permanently bad (hard bounce)
    retry_after: float | None = None  # seconds the provider asked us to wait


# hand_off(point_of_no_return, provider_id="") -> None
HandOff = Callable[..., None]


class Channel:
    kind = ""

    def open(self) -> None:  # noqa: B027  (optional hook)
        pass

    def close(self) -> None:  # noqa: B027
        pass

    def address_of(self, customer) -> str:
        raise NotImplementedError

    def send(self, outgoing: Outgoing, hand_off: HandOff) -> Outcome:
        raise NotImplementedError

    def __enter__(self) -> "Channel":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def channel_for(kind: str) -> Channel:
    path = settings.CAMPAIGN_CHANNELS.get(kind)
    if not path:
        raise ValueError(f"no channel backend configured for {kind!r}")
    return import_string(path)()
