"""Each customer's best local hour of the day to receive a message, from the hours (in their own
time zone) at which they engaged: clicks, conversions, and opens a person made (machine opens are
dropped before they get here, see `is_machine_open`).

The model: a customer's engagement hours are draws from their own 24-hour profile p_i, and p_i is
drawn from a Dirichlet centred on the workspace's overall profile q with strength a:
p_i ~ Dirichlet(a * q). The posterior mean is (n_i + a * q) / (N_i + a), so one click moves a
customer little and twenty move them a lot. q is the workspace's pooled (smoothed) histogram; a is
chosen by empirical Bayes, maximising the Dirichlet-multinomial marginal likelihood of the
customers' raw counts over a log grid. The counts in the posterior are first spread over the
neighbouring hours (a click at 09:50 says something about 10:00), circularly, so midnight
neighbours 23:00.

Confidence is the posterior probability that the customer's true best hour lies within one hour
of the one reported, estimated from Dirichlet draws. Too thin (fewer weighted events than
`min_events`, or a confidence under `min_confidence`): the answer says so (`thin`); the hour
reported is still the shrunk profile's best, which for a customer with little data is the
workspace's best or near it, and callers choose: a campaign sends the thin at its own time, a
journey's delay at this hour. A thin workspace (under WORKSPACE_MIN_EVENTS events in all) has no
best hour of its own (`workspace_hour` None).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

HOURS = 24
# Spread of one event over its hour and the two beside it (sums to 1).
KERNEL = (0.25, 0.5, 0.25)
DEFAULT_STRENGTH = 10.0  # pseudo-events of the workspace profile when EB has too little to go on
MIN_CUSTOMERS_FOR_EB = 20  # customers with >= 2 events needed to estimate the strength
WORKSPACE_MIN_EVENTS = 30.0  # below this the workspace profile itself is too thin to use

# Machine opens. Apple Mail Privacy Protection and the webmail image proxies fetch the pixel
# themselves (on delivery, or whenever they like), so the hour says nothing about the person:
# an open is a person's only when its user agent is recorded and is no known proxy, prefetcher
# or scanner, and it came later than MACHINE_OPEN_SECONDS after the send.
MACHINE_OPEN_SECONDS = 120
PROXY_AGENTS = (
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "yahoo! slurp",
    "apple mail privacy",
    "applemailprivacy",
    "outlook-ios-proxy",
    "microsoft office/",  # Outlook's link/image preview fetcher
    "barracuda",
    "mimecast",
    "proofpoint",
    "bot",
    "crawler",
    "spider",
    "preview",
)
# Apple's MPP proxy sends a bare "Mozilla/5.0" with nothing after it; a real mail client or browser
# names itself.
BARE_AGENTS = ("mozilla/5.0", "mozilla/4.0", "")


def is_machine_open(user_agent: str | None, seconds_after_send: float | None) -> bool:
    """True when an open's hour must not count: no recorded user agent, a known proxy or
    prefetcher's, or an open within MACHINE_OPEN_SECONDS of the send (or before it)."""
    if user_agent is None or seconds_after_send is None:
        return True
    agent = user_agent.strip().lower()
    if agent in BARE_AGENTS or any(marker in agent for marker in PROXY_AGENTS):
        return True
    return seconds_after_send < MACHINE_OPEN_SECONDS


def is_machine_click(user_agent: str | None) -> bool:
    """True for clicks by link scanners (security gateways follow every link on delivery)."""
    agent = (user_agent or "").strip().lower()
    return any(marker in agent for marker in ("barracuda", "mimecast", "proofpoint", "bot"))


@dataclass(frozen=True)
class BestHours:
    """Per customer (rows in the order of the counts given): `hour` the best local hour 0..23 of
    the shrunk profile (for a customer with few events, near the workspace's best), `posterior`
    (n, 24) the shrunk profile (rows sum to 1), `events` the weighted events seen, `weight`
    N / (N + a) (the share the customer's own data has in the posterior), `confidence` P(true
    best hour within one hour of `hour`), `thin`.
    Workspace-wide: `profile` q, `workspace_hour` (None when the workspace is thin too),
    `prior_strength` a and how it was chosen (`strength_basis`)."""

    hour: np.ndarray
    posterior: np.ndarray
    events: np.ndarray
    weight: np.ndarray
    confidence: np.ndarray
    thin: np.ndarray
    profile: np.ndarray
    workspace_hour: int | None
    workspace_events: float
    prior_strength: float
    strength_basis: str


def smooth(counts: np.ndarray) -> np.ndarray:
    """Each row's counts spread over neighbouring hours (circular); totals unchanged."""
    left, centre, right = KERNEL
    before, after = np.roll(counts, 1, axis=-1), np.roll(counts, -1, axis=-1)
    return centre * counts + left * before + right * after


def workspace_profile(counts: np.ndarray) -> np.ndarray:
    """The workspace's hour profile q: every customer's (smoothed) counts pooled, plus one
    pseudo-event per hour so that no hour has probability 0."""
    pooled = smooth(np.asarray(counts, dtype=float)).sum(axis=0) + 1.0
    return pooled / pooled.sum()


def log_marginal(counts: np.ndarray, profile: np.ndarray, strength: float) -> float:
    """Dirichlet-multinomial log likelihood of the rows of `counts` (multinomial coefficients
    left out: they do not depend on the strength)."""
    alpha = strength * profile
    totals = counts.sum(axis=1)
    return float(
        np.sum(gammaln(strength) - gammaln(totals + strength))
        + np.sum(gammaln(counts + alpha) - gammaln(alpha))
    )


def fit_strength(counts: np.ndarray, profile: np.ndarray) -> tuple[float, str]:
    """(a, how it was chosen): the empirical-Bayes strength of the workspace prior, over a log
    grid from 0.5 to 500 pseudo-events; DEFAULT_STRENGTH with too few repeat customers."""
    informative = counts[counts.sum(axis=1) >= 2]
    if len(informative) < MIN_CUSTOMERS_FOR_EB:
        return DEFAULT_STRENGTH, f"default ({len(informative)} customers with 2+ events)"
    grid = np.geomspace(0.5, 500, 61)
    scores = [log_marginal(informative, profile, a) for a in grid]
    return float(grid[int(np.argmax(scores))]), f"empirical Bayes on {len(informative)} customers"


def _confidence(alpha: np.ndarray, hour: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """P(argmax of p ~ Dirichlet(alpha) lies within one hour of `hour`), row by row."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(alpha))
    near = (hour[:, None] + np.array([-1, 0, 1])[None, :]) % HOURS
    for start in range(0, len(alpha), 2048):
        block = alpha[start : start + 2048]
        samples = rng.gamma(block[:, None, :].repeat(draws, axis=1))  # (b, draws, 24)
        best = samples.argmax(axis=2)  # the normalisation does not move the argmax
        hits = (best[:, :, None] == near[start : start + 2048, None, :]).any(axis=2)
        out[start : start + 2048] = hits.mean(axis=1)
    return out


def best_hours(
    counts: np.ndarray,
    *,
    min_events: float = 3.0,
    min_confidence: float = 0.2,
    strength: float | None = None,
    draws: int = 100,
    seed: int = 0,
) -> BestHours:
    """Best local hour per customer from `counts` (n, 24): weighted engagement events per local
    hour (e.g. click 1, conversion 1, a person's open 0.5). `strength` fixes the prior's weight
    in pseudo-events instead of estimating it."""
    counts = np.asarray(counts, dtype=float).reshape(-1, HOURS)
    if (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError("counts must be finite and non-negative")
    spread = smooth(counts)
    profile = workspace_profile(counts)
    if strength is None:
        # On the raw counts: fractional (spread) counts would read as no clumping at all and
        # push the strength to the top of the grid (measured: 500 where the truth was ~20).
        strength, basis = fit_strength(counts, profile)
    else:
        strength, basis = float(strength), "given"
    events = counts.sum(axis=1)
    alpha = spread + strength * profile
    posterior = alpha / alpha.sum(axis=1, keepdims=True)
    hour = posterior.argmax(axis=1)
    confidence = _confidence(alpha, hour, draws, seed) if len(counts) else np.zeros(0)
    thin = (events < min_events) | (confidence < min_confidence)
    workspace_events = float(events.sum())
    workspace_hour = int(profile.argmax()) if workspace_events >= WORKSPACE_MIN_EVENTS else None
    return BestHours(
        hour=hour.astype(int),
        posterior=posterior,
        events=events,
        weight=events / (events + strength),
        confidence=confidence,
        thin=thin,
        profile=profile,
        workspace_hour=workspace_hour,
        workspace_events=workspace_events,
        prior_strength=strength,
        strength_basis=basis,
    )
