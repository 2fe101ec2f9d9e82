"""Journey tasks on `default`: moving due enrolments on, and reading the event outbox. Both run
every JOURNEY_TICK_SECONDS from beat and when nudged (an enrolment by API, an event written);
any number may run at once, since each batch is claimed in its own transaction."""

import time

from campaigns.journeys import date_triggers, engine
from workers import queues
from workers.runs import queued_task
from workers.services import nudge_taken

ADVANCE, EVENTS = "campaigns.journeys.tasks.advance", "campaigns.journeys.tasks.events"
BUDGET_SECONDS = 20.0  # one task works through a backlog this long, then the next one goes on


def _drain(step, budget: float = BUDGET_SECONDS) -> int:
    started, total = time.monotonic(), 0
    while time.monotonic() - started < budget:
        done = step()
        total += done
        if not done:
            break
    return total


@queued_task(queue=queues.DEFAULT, time_limit=2 * 60, acks_late=True, ignore_result=True)
def advance() -> int:
    """Moves on every enrolment whose timer is due (a delay over, a wait timed out)."""
    nudge_taken(ADVANCE)
    return _drain(engine.advance_due)


@queued_task(queue=queues.DEFAULT, time_limit=2 * 60, acks_late=True, ignore_result=True)
def events() -> int:
    """Reads recorded events (waits met, exits, customers taken in by triggers), then who
    entered or left the segments journeys listen to."""
    nudge_taken(EVENTS)
    total, busy = 0, False
    for read in (engine.events_arrived, engine.memberships_changed):
        try:
            total += _drain(lambda read=read: read(wait=False))
        except engine.ReaderBusy:
            busy = True
    if busy:
        # The reader at it now drains what is there; a look again in a second covers what was
        # written as it finished (beat's tick would, a few seconds later).
        events.apply_async(countdown=1, expires=30)
    return total


@queued_task(queue=queues.DEFAULT, time_limit=10 * 60, acks_late=True, ignore_result=True)
def dates() -> int:
    """Takes in the customers of date-triggered journeys whose day has come in their zone."""
    return date_triggers.run_due()


@queued_task(queue=queues.DEFAULT, time_limit=5 * 60, acks_late=True, ignore_result=True)
def sweep() -> dict:
    """Gives any unfinished enrolment that holds no timer one due now (there should be none)."""
    return engine.sweep()
