from campaigns.admin import brand, campaigns, deliverability, home, protection, sending, webhooks  # noqa: F401
from campaigns.journeys import admin as journeys_admin  # noqa: F401  (journeys, enrolments)
