"""When each recipient's message is due. The campaign's own timing (now, one moment, a local
time) is computed per time zone by campaigns.schedule; best-hour timing moves it per recipient."""

from datetime import datetime

from campaigns.models import Campaign


class CampaignTime:
    def due(self, customer_id: int, zone_due: datetime) -> tuple[datetime, dict]:
        """(when `customer_id` is due, facts for the message's `decision`); `zone_due` is the
        campaign's time in the customer's zone."""
        return zone_due, {}


def for_launch(campaign: Campaign, customers: list):
    return CampaignTime()
