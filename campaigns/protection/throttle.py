"""Per recipient-domain throttling, shared by every worker through Redis.

Mail to one provider (gmail.com and googlemail.com are one: CAMPAIGN_DOMAIN_GROUPS) goes at
most at that group's rate (CAMPAIGN_DOMAIN_RATES, messages per second per workspace; 0 = no
limit of its own; "default" for every other domain, each counted apart). When a provider
answers with a throttling reply (421, 452 "too many", "4.7.28 ... rate limited", Yahoo's
"TS0x ... deferred", ...), its group cools down: nothing goes to it for a delay that doubles
with each throttling reply that comes after a cool-down ended, and after it the group sends at
a rate halved for each such step (from CAMPAIGN_THROTTLE_START_RATE where it had no limit).
Each quiet CAMPAIGN_THROTTLE_RECOVER_SECONDS takes one step back. Messages for a cooling or
busy group are not sent and not failed: delivery puts them back in the queue for later, through
the ledger's conditional retry (the claim must still be ours), without using up an attempt.
Every other group goes on at its full rate meanwhile.

While Redis is unreachable every group counts as open (the channel's own RateLimiter waits
for Redis; a throttling reply then only delays its own message).
"""

import random
import re
import time

import redis
from django.conf import settings

from marketing_ai import kv

# A reply that says "you send too much / too fast", not "this recipient, try later" (greylisting
# is per message: 451 4.7.1 is retried alone and slows no one else).
_THROTTLE_WORDS = re.compile(
    r"rate.?limit|throttl|too many|too fast|excessive|unusual|unexpected volume|"
    r"temporarily deferred|server busy|\bTS0\d|4\.7\.28|4\.7\.650|4\.7\.500|4\.5\.3",
    re.IGNORECASE,
)
_REPLY = re.compile(r"^(?:MAIL|RCPT|DATA|end of data): (\d{3})\b")

# KEYS: state, bucket. ARGV: now, rate, start rate, recover seconds, wanted.
# Returns {granted, seconds to wait, current rate * 1000}.
_ADMIT = """
local now, rate, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local recover, wanted = tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'level', 'until', 'last')
local level, untl, last = tonumber(st[1]) or 0, tonumber(st[2]) or 0, tonumber(st[3]) or 0
if level > 0 and now >= untl and now - last > recover then
  local steps = math.floor((now - last) / recover)
  level = math.max(0, level - steps)
  redis.call('HSET', KEYS[1], 'level', level, 'last', last + steps * recover)
end
if level > 0 then
  if rate > 0 then rate = rate / 2 ^ level else rate = start / 2 ^ (level - 1) end
end
if now < untl then return {0, tostring(untl - now), tostring(rate)} end
if rate <= 0 then return {wanted, '0', '0'} end
local burst = math.max(1, rate)
local b = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[2], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[2], 3600)
if granted > 0 then return {granted, '0', tostring(rate)} end
return {0, tostring((1 - tokens) / rate), tostring(rate)}
"""

# KEYS: state. ARGV: now, base delay, cap, the provider's retry hint (0: none).
# Returns {cooling until, level}.
_THROTTLED = """
local now, base, cap, hint = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'level', 'until')
local level, untl = tonumber(st[1]) or 0, tonumber(st[2]) or 0
if now >= untl then level = math.min(level + 1, 12) end
local delay = math.max(hint, math.min(cap, base * 2 ^ (level - 1)))
untl = math.max(untl, now + delay)
redis.call('HSET', KEYS[1], 'level', level, 'until', untl, 'last', now)
redis.call('EXPIRE', KEYS[1], 86400)
return {tostring(untl), level}
"""


def is_throttling(reason: str) -> bool:
    """Whether a refusal (as the SMTP channel words it: "RCPT: 421 4.7.28 ...") is a
    provider slowing us down rather than a problem with this one message."""
    found = _REPLY.match(reason)
    if found is None or not found.group(1).startswith("4"):
        return False
    return found.group(1) in ("421", "452") or bool(_THROTTLE_WORDS.search(reason))


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def group_of(address: str) -> str:
    """The provider an address's mail goes to: a group of CAMPAIGN_DOMAIN_GROUPS, else its
    own domain."""
    domain = domain_of(address)
    return _groups().get(domain, domain)


_group_cache: tuple[int, dict[str, str]] = (0, {})


def _groups() -> dict[str, str]:
    global _group_cache
    table = settings.CAMPAIGN_DOMAIN_GROUPS
    if _group_cache[0] != id(table):
        _group_cache = (
            id(table),
            {d.lower(): name for name, domains in table.items() for d in domains},
        )
    return _group_cache[1]


def domains_of(group: str) -> list[str]:
    """The domains whose mail goes to `group` (the inverse of group_of)."""
    found = [domain for domain, name in _groups().items() if name == group]
    return found or [group]


def base_rate(group: str) -> float:
    rates = settings.CAMPAIGN_DOMAIN_RATES
    return float(rates.get(group, rates.get("default", 0)) or 0)


class DomainGate:
    """One deliver task's view of the per-domain limits. Tokens are taken from Redis a few at
    a time and kept for at most HOLD_SECONDS, so a cool-down another worker starts is seen
    within that time. A group found shut (cooling, or out of tokens) is remembered as shut
    until the time Redis gave: the other messages for it in a chunk are put back without a
    round trip each (a cool-down only ever grows, so this never sends early)."""

    WANTED = 8
    HOLD_SECONDS = 0.25

    def __init__(self, *, workspace_id: int, channel: str = "email") -> None:
        self.on = channel == "email"
        self.prefix = f"marketing_ai:throttle:{workspace_id}:"
        self.tokens: dict[str, tuple[int, float]] = {}
        self.next_slot: dict[str, float] = {}
        self.shut: dict[str, tuple[float, float]] = {}  # group -> (until, rate), Unix seconds
        self.random = random.Random()  # noqa: S311  (spread of retry times, not a secret)

    def admit(self, address: str) -> float:
        """0 when a message to `address` may go now; else the seconds after which it should be
        tried again (its group is cooling down, or over its rate)."""
        if not self.on:
            return 0.0
        group = group_of(address)
        now = time.time()
        held, at = self.tokens.get(group, (0, 0.0))
        if held > 0 and now - at < self.HOLD_SECONDS:
            self.tokens[group] = (held - 1, at)
            return 0.0
        until, rate = self.shut.get(group, (0.0, 0.0))
        if now < until:
            return self._later(group, now, until - now, rate)
        try:
            granted, wait, rate = kv.client().eval(
                _ADMIT,
                2,
                self.prefix + group,
                self.prefix + group + ":bucket",
                now,
                base_rate(group),
                settings.CAMPAIGN_THROTTLE_START_RATE,
                settings.CAMPAIGN_THROTTLE_RECOVER_SECONDS,
                self.WANTED,
            )
        except redis.RedisError:
            return 0.0
        granted, wait, rate = int(granted), float(wait), float(rate)
        if granted > 0:
            self.tokens[group] = (granted - 1, now)
            return 0.0
        self.tokens.pop(group, None)
        self.shut[group] = (now + wait, rate)
        return self._later(group, now, wait, rate)

    def _later(self, group: str, now: float, wait: float, rate: float) -> float:
        # Spread the ones put back over the group's rate, so they do not all come due at once
        # and go back and forth between the queue and the workers.
        slot = max(now + wait, self.next_slot.get(group, 0.0))
        self.next_slot[group] = slot + (1.0 / rate if rate > 0 else 0.05)
        return slot - now + self.random.uniform(0, 0.05)

    def throttled(self, address: str, retry_after: float | None = None) -> float:
        """Records a throttling reply from `address`'s provider; the seconds until its group
        may be tried again (with a little spread, so retries do not arrive together)."""
        group = group_of(address)
        self.tokens.pop(group, None)
        self.shut.pop(group, None)
        now = time.time()
        try:
            until, _level = kv.client().eval(
                _THROTTLED,
                1,
                self.prefix + group,
                now,
                settings.CAMPAIGN_THROTTLE_BASE_SECONDS,
                settings.CAMPAIGN_THROTTLE_MAX_SECONDS,
                retry_after or 0,
            )
        except redis.RedisError:
            return float(settings.CAMPAIGN_THROTTLE_BASE_SECONDS)
        wait = max(0.0, float(until) - now)
        return wait + self.random.uniform(0, max(0.05, wait * 0.1))

    def state(self, address: str) -> dict:
        """The group's level and cool-down end (for tests and the admin)."""
        group = group_of(address)
        level, until = kv.client().hmget(self.prefix + group, "level", "until")
        return {"group": group, "level": int(level or 0), "until": float(until or 0)}
