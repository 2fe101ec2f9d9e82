from campaigns.admin import brand, campaigns, webhooks  # noqa: F401
