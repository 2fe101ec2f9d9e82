"""workers.services.nudge_on_commit: a nudge while one is queued and not started adds nothing,
against a real Redis (the broker and the flag), with no worker to take them."""

import pytest
import redis
from django.db import transaction

from workers.services import nudge_on_commit, nudge_taken

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "campaigns.journeys.tasks.events"  # a task with no arguments, on the default queue


def queued(url: str) -> int:
    return redis.Redis.from_url(url).llen("default")


def test_a_nudge_while_one_waits_adds_nothing_and_one_after_it_started_does(own_redis):
    with transaction.atomic():
        for _ in range(3):
            nudge_on_commit(TASK)
        assert queued(own_redis.url) == 0  # nothing before the commit
    assert queued(own_redis.url) == 1
    for _ in range(5):  # each its own transaction: the queued one will see their work too
        nudge_on_commit(TASK)
    assert queued(own_redis.url) == 1
    nudge_taken(TASK)  # the worker started it: new work needs a new run
    nudge_on_commit(TASK)
    assert queued(own_redis.url) == 2


def test_a_rolled_back_write_nudges_nothing(own_redis):
    with pytest.raises(RuntimeError), transaction.atomic():
        nudge_on_commit(TASK)
        raise RuntimeError
    assert queued(own_redis.url) == 0
    nudge_on_commit(TASK)
    assert queued(own_redis.url) == 1
