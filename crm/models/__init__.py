"""The CRM's models, one module per subject; import them from here. Every row belongs to a
workspace, and no request ever sees another workspace's rows."""

from crm.models.access import ApiKey, AuditEntry, IdempotencyRecord
from crm.models.catalogue import Order, OrderLine, Product
from crm.models.customers import Channel, Consent, Customer, ExternalIdentity
from crm.models.events import Event, EventOutbox
from crm.models.forecasts import Forecast, ForecastAlert, ForecastTrend
from crm.models.scores import CustomerScore, Recommendation
from crm.models.segments import MembershipOutbox, Segment, SegmentMembership
from crm.models.workspaces import Workspace
from crm.support.models import ChatMessage, Conversation, KnowledgeArticle

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Channel",
    "ChatMessage",
    "Consent",
    "Conversation",
    "Customer",
    "CustomerScore",
    "Event",
    "EventOutbox",
    "ExternalIdentity",
    "Forecast",
    "ForecastAlert",
    "ForecastTrend",
    "IdempotencyRecord",
    "KnowledgeArticle",
    "Order",
    "OrderLine",
    "Product",
    "Recommendation",
    "MembershipOutbox",
    "Segment",
    "SegmentMembership",
    "Workspace",
]
