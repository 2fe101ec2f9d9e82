"""After a write that changed what customers did (events, orders): the incremental segment
refresh once it commits, and a word to automation that reads the event outbox."""

from crm.models import Segment, Workspace
from crm.signals import events_recorded
from workers.services import send_on_commit, task_named


def after_behaviour_change(*, workspace: Workspace, customer_ids: set[int]) -> None:
    """Queues a membership refresh for these customers if any rules segment could change, and
    tells automation that reads recorded events (crm.signals.events_recorded)."""
    if customer_ids:
        events_recorded.send(sender=Workspace, workspace_id=workspace.pk)
    if (
        not customer_ids
        or not Segment.objects.filter(workspace=workspace, kind=Segment.Kind.RULES).exists()
    ):
        return
    ids = sorted(customer_ids)
    refresh_for_customers = task_named("crm.tasks.segments.refresh_for_customers")

    def enqueue() -> None:
        for start in range(0, len(ids), 5000):
            refresh_for_customers.delay(workspace.pk, ids[start : start + 5000])

    # With Redis down the write still succeeds; the nightly refresh_all catches the segments up.
    send_on_commit(enqueue, what=f"segment refresh for {len(ids)} customers")
