"""campaigns.ratelimit: one send rate per channel and workspace, shared through Redis by every
worker."""

import time as clock

from campaigns.ratelimit import RateLimiter


def test_rate_limit_is_shared_through_redis(settings):
    settings.CAMPAIGN_RATE_LIMITS = {"sms": 20}
    limiter = RateLimiter(channel="sms", workspace_id=987654)
    other = RateLimiter(channel="sms", workspace_id=987654)  # a second worker, same bucket
    started = clock.monotonic()
    for _ in range(30):
        assert limiter.take(clock.monotonic() + 10)
        assert other.take(clock.monotonic() + 10)
    elapsed = clock.monotonic() - started
    assert elapsed > (60 - 20 - 16 * 2) / 20  # 60 sends at 20/s after a 1-second burst
