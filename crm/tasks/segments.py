"""Segment membership refreshes on the `default` queue: one segment on demand, incremental
after new events, nightly; RFM and behaviour clusters as tracked runs."""

from crm.models import Segment, Workspace
from crm.services import segments as segment_services
from workers import queues
from workers.models import TaskRun
from workers.retry import retrying
from workers.runs import Progress, nightly_task, queued_task, tracked_task


@tracked_task(queue=queues.DEFAULT, time_limit=30 * 60)
def refresh(run: TaskRun, progress: Progress) -> dict:
    """Params: segment_id. Re-evaluates the whole segment."""
    segment = Segment.objects.get(pk=run.params["segment_id"])
    progress(10, f"evaluating {segment.name}")
    return segment_services.segment_refresh(segment=segment)


@queued_task(queue=queues.DEFAULT, time_limit=5 * 60, acks_late=True, reject_on_worker_lost=True)
def refresh_for_customers(workspace_id: int, customer_ids: list[int]) -> int:
    """Re-evaluates the workspace's rule segments for customers whose behaviour just changed.
    Idempotent: running it twice leaves the same memberships."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return 0
    # Concurrent refreshes of overlapping customers can deadlock: the loser runs again.
    return retrying(
        lambda: segment_services.segments_refresh_for_customers(
            workspace=workspace, customer_ids=customer_ids
        ),
        atomic=False,
    )


@nightly_task(queue=queues.DEFAULT, time_limit=2 * 3600)
def refresh_all() -> int:
    """Nightly: rules with time windows ("in the last 90 days") change as days pass, and so do
    the RFM groups of workspaces that have them."""
    from crm.services.rfm import PREFIX, rfm_segments_refresh  # numpy: kept out of the web

    count = 0
    for segment in Segment.objects.filter(kind=Segment.Kind.RULES).select_related("workspace"):
        segment_services.segment_refresh(segment=segment)
        count += 1
    with_rfm = Segment.objects.filter(name__startswith=PREFIX).values_list("workspace", flat=True)
    for workspace in Workspace.objects.filter(pk__in=with_rfm):
        rfm_segments_refresh(workspace=workspace)
    return count


@tracked_task(queue=queues.DEFAULT, time_limit=60 * 60)
def clusters(run: TaskRun, progress: Progress) -> dict:
    """Clusters customers by behaviour and taste into described segments."""
    from crm.services.clusters import cluster_segments_refresh  # numpy: kept out of the web

    progress(5, "reading orders")
    return cluster_segments_refresh(workspace=run.workspace, progress=progress)


@tracked_task(queue=queues.DEFAULT, time_limit=30 * 60)
def rfm(run: TaskRun, progress: Progress) -> dict:
    """Builds (or rebuilds) the workspace's RFM segments."""
    from crm.services.rfm import rfm_segments_refresh  # numpy: kept out of the web

    progress(10, "scoring recency, frequency and spend")
    return rfm_segments_refresh(workspace=run.workspace)
