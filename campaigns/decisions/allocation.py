"""Which variant each recipient gets at launch, and the probability of that choice.

A fixed split draws by the variants' weights (the propensity is the variant's share); A/B mode
does the same for its test share and leaves the rest without a variant until the winner is
decided (campaigns.services.abtest). A bandit campaign sends in waves: wave 1 from the uniform
policy, the later ones from the policy refitted between waves (campaigns.services.bandit). A
journey's send step asks `journey_choose` per customer."""

from datetime import datetime

from django.utils import timezone

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


class Waves:
    """Bandit mode at launch: each recipient is drawn into a wave (equal shares, the campaign's
    seed); wave 1 gets a variant now, uniformly (every arm 1/K), the others wait for their wave's
    decision. The contextual policy logs each wave-1 recipient's features at launch too, so the
    first refit learns from what it saw."""

    def __init__(self, campaign: Campaign, variants: list[Variant], now: datetime) -> None:
        from campaigns.services import bandit  # numpy with it: workers only, not the web process

        self.bandit = bandit
        self.campaign, self.variants = campaign, variants
        self.seed = campaign.seed or 0
        self.uniform = bandit.shares(variants, [1 / len(variants)] * len(variants))
        self.contexts = None
        if campaign.bandit == Campaign.Bandit.CONTEXTUAL:
            self.contexts = bandit.Contexts(campaign.workspace, now)

    def wave_of(self, customer_id: int) -> int:
        return 1 + min(
            int(unit(self.seed, "wave", customer_id) * self.campaign.waves), self.campaign.waves - 1
        )

    def first(
        self, customer_id: int, ab_test: bool
    ) -> tuple[int | None, float | None, int | None, dict]:
        wave = self.wave_of(customer_id)
        facts = {"policy": self.campaign.bandit, "wave": wave}
        if wave > 1:
            return None, None, wave, facts
        arm = self.bandit.pick([1 / len(self.variants)] * len(self.variants),
                          unit(self.seed, "wave:1", customer_id))  # fmt: skip
        facts["probabilities"] = self.uniform
        if self.contexts is not None:
            facts["context"] = self.contexts.of(customer_id)
        return self.variants[arm].pk, round(1 / len(self.variants), 6), wave, facts


def for_launch(campaign: Campaign, variants: list[Variant]):
    if campaign.bandit and len(variants) >= 2:
        return Waves(campaign, variants, timezone.now())
    return FixedSplit(campaign, variants)


def journey_choose(
    campaign: Campaign, variants: list[Variant], customers
) -> dict[int, tuple[int, float, dict]]:
    """The variant of a journey's message for each customer (`customers`: ids or Customer rows),
    decided now by the message's policy: Beta-Thompson over the message's own results so far
    (its `ab_metric` per sent message), or the contextual policy refitted on its logged contexts
    and the customers' features now; with no bandit, the fixed split by weight. Returns
    {customer id: (variant id, probability of that variant, facts for the message's decision)}.
    The draw is reproducible: the campaign's seed, the customer and how many were sent before."""
    ids = [c if isinstance(c, int) else c.pk for c in customers]
    if not ids or not variants:
        return {}
    seed = campaign.seed or 0
    if not campaign.bandit or len(variants) < 2:
        split = FixedSplit(campaign, variants)
        return {
            pk: (v.pk, round(split.share[v.pk], 6), {"policy": "split"})
            for pk in ids
            for v in [pick_variant(variants, unit(seed, "variant", pk))]
        }
    import numpy as np  # with the bandit: workers only, not the web process

    # numpy/LightGBM with it: loaded on use, not in the web process
    from campaigns.services import bandit

    successes, trials = bandit.reward_counts(campaign, variants)
    purpose = f"journey:{int(trials.sum())}"
    now = timezone.now()
    if campaign.bandit == Campaign.Bandit.CONTEXTUAL:
        # numpy/LightGBM with it: loaded on use, not in the web process
        from marketing_ai.ml.bandit.policies import LinearThompson

        X, chosen, rewards = bandit.logged_contexts(campaign, variants)
        policy = LinearThompson(l2=1.0, scale=1.0).fit(X, chosen, rewards, n_arms=len(variants))
        contexts = bandit.contexts_at(campaign.workspace, ids, now)
        table = policy.probabilities(
            bandit.design([contexts[pk] for pk in ids]),
            draws=bandit.CONTEXT_DRAWS,
            seed=(seed + int(trials.sum())) % 2**32,
        )
    else:
        # numpy/LightGBM with it: loaded on use, not in the web process
        from marketing_ai.ml.bandit.policies import BetaThompson

        contexts = None
        shares = BetaThompson(prior_a=1.0, prior_b=1.0).probabilities(
            successes, trials, draws=bandit.THOMPSON_DRAWS, seed=(seed + int(trials.sum())) % 2**32
        )
        table = np.tile(shares, (len(ids), 1))
    out = {}
    for pk, probabilities in zip(ids, table, strict=True):
        arm = bandit.pick(probabilities, unit(seed, purpose, pk))
        facts = {"policy": campaign.bandit, "probabilities": bandit.shares(variants, probabilities)}
        if contexts is not None:
            facts["context"] = contexts[pk]
        out[pk] = (variants[arm].pk, round(float(probabilities[arm]), 6), facts)
    return out
