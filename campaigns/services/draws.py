"""Reproducible draws: a number in [0, 1) per (seed, purpose, customer), and the variant a
number falls on. Launches and journeys draw through these so the same seed always draws the same."""

import hashlib

from campaigns.models import Variant


def unit(seed: int, purpose: str, customer_id: int) -> float:
    """A reproducible number in [0, 1) for (seed, purpose, customer)."""
    digest = hashlib.blake2b(f"{seed}:{purpose}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick_variant(variants: list[Variant], u: float) -> Variant:
    """The variant whose share of the weights contains `u` (equal shares if all weights are 0)."""
    weights = [max(0, v.weight) for v in variants]
    if not sum(weights):
        weights = [1] * len(variants)
    edge, total = 0.0, sum(weights)
    for variant, weight in zip(variants, weights, strict=True):
        edge += weight / total
        if u < edge:
            return variant
    return variants[-1]
