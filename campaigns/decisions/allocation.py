"""Which variant each recipient gets at launch, and the probability of that choice.

A fixed split draws by the variants' weights (the propensity is the variant's share); A/B mode
does the same for its test share and leaves the rest without a variant until the winner is
decided (campaigns.services.abtest)."""

from campaigns.models import Campaign, Variant
from campaigns.services.draws import pick_variant, unit


class FixedSplit:
    def __init__(self, campaign: Campaign, variants: list[Variant]) -> None:
        self.campaign, self.variants = campaign, variants
        weights = [max(0, v.weight) for v in variants]
        total = sum(weights) or len(variants)
        self.share = {
            v.pk: (w / total if sum(weights) else 1 / len(variants))
            for v, w in zip(variants, weights, strict=True)
        }
        self.seed = campaign.seed or 0

    def first(
        self, customer_id: int, ab_test: bool
    ) -> tuple[int | None, float | None, int | None, dict]:
        """(variant id or None for later, propensity, wave, facts) for a queued recipient."""
        if self.campaign.ab_test_percent and not ab_test:
            return None, None, None, {}
        variant = pick_variant(self.variants, unit(self.seed, "variant", customer_id))
        return variant.pk, round(self.share[variant.pk], 6), None, {"policy": "split"}


def for_launch(campaign: Campaign, variants: list[Variant]):
    return FixedSplit(campaign, variants)
