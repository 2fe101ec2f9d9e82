"""Customer scores: one row per customer and kind, replaced by each scoring run."""

from crm.models import CustomerScore


def scores_upsert(scores: list[CustomerScore]) -> int:
    """Writes the scores, replacing each customer's previous score of the same kind."""
    CustomerScore.objects.bulk_create(
        scores,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["customer", "kind"],
        update_fields=["value", "model_version", "reasons", "computed_at"],
    )
    return len(scores)
