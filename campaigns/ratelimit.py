"""Per-channel send rate shared by every worker: a token bucket in Redis.

CAMPAIGN_RATE_LIMITS = {"email": 0, "sms": 30} (messages per second per workspace; 0 = no limit).
While Redis is unreachable the limiter waits (sends pause) instead of sending unmetered.
"""

import time

import redis
from django.conf import settings

from marketing_ai import kv

# KEYS[1] bucket; ARGV: rate per second, burst, wanted, now (s). Returns tokens granted.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 3600)
return granted
"""


class RateLimiter:
    def __init__(self, *, channel: str, workspace_id: int) -> None:
        self.rate = float(settings.CAMPAIGN_RATE_LIMITS.get(channel, 0) or 0)
        self.key = f"marketing_ai:rate:{workspace_id}:{channel}"
        self.burst = max(1.0, self.rate)  # up to one second's worth at once
        self.tokens = 0

    def take(self, deadline: float) -> bool:
        """Waits for one send slot; False if the deadline passes first."""
        if self.rate <= 0:
            return True
        while self.tokens <= 0:
            if time.monotonic() > deadline:
                return False
            try:
                self.tokens = int(
                    kv.client().eval(_TAKE, 1, self.key, self.rate, self.burst, 16, time.time())
                )
            except redis.RedisError:
                self.tokens = 0
            if self.tokens <= 0:
                time.sleep(min(1.0, 1.0 / self.rate))
        self.tokens -= 1
        return True
