"""Who of the eligible audience gets the message. `everyone` sends to all of them; the uplift
rules (top k%, uplift > 0) are decided here too."""

from campaigns.models import Campaign


class Everyone:
    """No targeting: every eligible customer is sent to."""

    def decide(self, customer_id: int, held_out: bool) -> tuple[str, dict]:
        """(why `customer_id` is not sent to, or "", facts for the message's `decision`).
        Called for the holdout too (`held_out`), whose facts the results compare against."""
        return "", {}


def for_launch(campaign: Campaign, customer_ids: list[int]):
    return Everyone()
