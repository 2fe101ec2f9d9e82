"""Intervals for campaign results: rates, differences of rates (lift over a holdout), means.

- Wilson score interval for a proportion (good coverage at small counts and rates near 0 or 1,
  unlike the Wald interval).
- Newcombe's hybrid score interval for a difference of two proportions (his method 10, built
  from the two Wilson intervals).
- Relative lift interval from the log of the rate ratio (Katz), undefined when a rate is 0.
- Welch normal interval for a difference of means (revenue per recipient).
"""

import math
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(hits_a: int, n_a: int, hits_b: int, n_b: int, z: float = Z95):
    """Interval for p_a - p_b (Newcombe 1998, method 10)."""
    if n_a <= 0 or n_b <= 0:
        return (-1.0, 1.0)
    p_a, p_b = hits_a / n_a, hits_b / n_b
    l_a, u_a = wilson_interval(hits_a, n_a, z)
    l_b, u_b = wilson_interval(hits_b, n_b, z)
    d = p_a - p_b
    lower = d - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    upper = d + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    return (max(-1.0, lower), min(1.0, upper))


def relative_lift_interval(hits_a: int, n_a: int, hits_b: int, n_b: int, z: float = Z95):
    """Interval for p_a / p_b - 1; None when either group has no hits."""
    if min(hits_a, hits_b, n_a, n_b) <= 0:
        return None
    log_ratio = math.log((hits_a / n_a) / (hits_b / n_b))
    se = math.sqrt(1 / hits_a - 1 / n_a + 1 / hits_b - 1 / n_b)
    return (math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)


def mean_interval(total: float, total_sq: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Interval for a mean from its sum and sum of squares."""
    if n <= 1:
        return (float("-inf"), float("inf")) if n == 0 else (total, total)
    mean = total / n
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return (mean - half, mean + half)


def mean_difference_interval(
    a: tuple[float, float, int], b: tuple[float, float, int], z: float = Z95
) -> tuple[float, float]:
    """Welch interval for mean_a - mean_b; each argument is (sum, sum of squares, n)."""
    (sa, qa, na), (sb, qb, nb) = a, b
    if na <= 1 or nb <= 1:
        return (float("-inf"), float("inf"))
    ma, mb = sa / na, sb / nb
    va = max(0.0, (qa - na * ma * ma) / (na - 1))
    vb = max(0.0, (qb - nb * mb * mb) / (nb - 1))
    half = z * math.sqrt(va / na + vb / nb)
    return (ma - mb - half, ma - mb + half)
