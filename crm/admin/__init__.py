"""The CRM in the Django admin, every view scoped to the user's workspaces."""

from crm.admin import (  # noqa: F401
    apikeys,
    catalogue,
    customers,
    forecasts,
    home,
    runs,
    segments,
    workspaces,
)
from crm.support import admin as support_admin  # noqa: F401  (conversations, articles)
