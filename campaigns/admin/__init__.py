from campaigns.admin import campaigns, webhooks  # noqa: F401
