"""The CRM in the Django admin, every view scoped to the user's workspaces."""

from crm.admin import (  # noqa: F401
    apikeys,
    catalogue,
    customers,
    runs,
    segments,
    support,
    workspaces,
)
