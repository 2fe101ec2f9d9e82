"""What the journeys listen to: events recorded through the API and bulk writes start a read of
the event outbox at once, so an event reaches its journeys within a second, not at the next
beat."""

from campaigns.journeys import services
from crm.models import Workspace
from crm.signals import events_recorded


def _events_recorded(sender, workspace_id: int, **_) -> None:
    if Workspace.objects.filter(pk=workspace_id, event_outbox=True).exists():
        services.events_soon()


def connect() -> None:
    events_recorded.connect(_events_recorded, dispatch_uid="campaigns.journeys.events")
