"""Hands changed customers to the incremental segment refresh once the write commits."""

from crm.models import Segment, Workspace
from workers.services import send_on_commit, task_named


def after_behaviour_change(*, workspace: Workspace, customer_ids: set[int]) -> None:
    """Queues a membership refresh for these customers if any rules segment could change."""
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
