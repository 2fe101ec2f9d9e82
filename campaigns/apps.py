from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from campaigns import tasks  # noqa: F401  (registers the campaign tasks in every process)
        from campaigns.deliverability import esp
        from campaigns.journeys import signals as journey_signals
        from campaigns.journeys import tasks as journey_tasks  # noqa: F401
        from campaigns.services import forecast_events, privacy, webhooks

        esp.connect()
        forecast_events.connect()
        privacy.connect()
        webhooks.connect()
        journey_signals.connect()
