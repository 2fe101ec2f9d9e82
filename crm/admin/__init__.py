"""The CRM in the Django admin, every view scoped to the user's workspaces."""

from crm.admin import apikeys, catalogue, customers, segments, support, workspaces  # noqa: F401
