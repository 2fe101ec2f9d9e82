"""The lift a recommendation list gives products the active forecast has rising: a ranked list in,
the same products reordered out, with the ones lifted named so the answer can say so."""

from crm.selectors.forecasts import active_version
from crm.selectors.trending_products import rising_products

# At most +50% on a score: the change is a forecast over a few weeks, and a product whose
# recent level was tiny can show +500%; uncapped, one noisy series would jump to the top of
# every list. Half again lets a rising product pass its near neighbours, not the customer's
# clear favourites.
MAX_LIFT = 0.5
# forecast version id -> {product id: change}; a version's trends are written before it is
# promoted and never change after, so the version id is the whole key.
_changes: dict[int, dict[int, float]] = {}
VERSIONS_KEPT = 200


def rising_changes(workspace_id: int) -> tuple[int | None, dict[int, float]]:
    """(the active forecast version's id, {product id: forecast change} for its rising
    products); (None, {}) before the first forecast run. One query once the version is known
    to this process."""
    version = active_version(workspace_id)
    if version is None:
        return None, {}
    if version.pk not in _changes:
        if len(_changes) >= VERSIONS_KEPT:
            _changes.clear()
        _changes[version.pk] = {
            p.product_id: p.change for p in rising_products(workspace_id, limit=None)
        }
    return version.pk, _changes[version.pk]


def multiplier(change: float, weight: float) -> float:
    """1 + weight x change, capped at 1 + MAX_LIFT (and never below 1: only rising products
    are lifted, nothing is pushed down)."""
    return min(1.0 + weight * max(change, 0.0), 1.0 + MAX_LIFT)


def boosted(
    ranked: list[tuple[int, float]], changes: dict[int, float], weight: float
) -> tuple[list[int], set[int]]:
    """`ranked` [(product id, score)] best first, reordered by score x multiplier for the rising
    products; returns (product ids best first, ids whose score was lifted). A negative score
    (some models' raw scores are) is divided instead, so a lift always moves a product up. Ties
    keep the model's order."""
    lifted = {pid for pid, _ in ranked if changes.get(pid, 0.0) > 0} if weight > 0 else set()
    if not lifted:
        return [pid for pid, _ in ranked], set()

    def score(item: tuple[int, tuple[int, float]]) -> tuple[float, int]:
        position, (pid, raw) = item
        lift = multiplier(changes.get(pid, 0.0), weight) if pid in lifted else 1.0
        return (-(raw * lift if raw >= 0 else raw / lift), position)

    order = sorted(enumerate(ranked), key=score)
    return [pid for _, (pid, _) in order], lifted


def rank_scores(ids: list[int]) -> list[tuple[int, float]]:
    """Scores for a list that has only an order (the popular picks): n, n-1, ... 1, so a lift
    of x% passes a product about x% of its rank up the list."""
    return [(pid, float(len(ids) - i)) for i, pid in enumerate(ids)]
