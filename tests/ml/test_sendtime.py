"""marketing_ai.ml.sendtime: best local hour per customer, shrunk toward the workspace profile."""

import numpy as np
import pytest

from marketing_ai.ml import sendtime


def simulate(n: int, events: int, seed: int = 0, spread: float = 1.5):
    """Customers with a known preferred hour; each event's hour is that hour plus a rounded
    normal offset (sd `spread` hours), circular. Returns (counts (n, 24), true hours)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 24, size=n)
    counts = np.zeros((n, 24))
    offsets = np.rint(rng.normal(0, spread, size=(n, events))).astype(int)
    for i in range(n):
        np.add.at(counts[i], (truth[i] + offsets[i]) % 24, 1)
    return counts, truth


def circular_distance(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b)) % 24
    return np.minimum(d, 24 - d)


def test_recovers_the_preferred_hour_with_enough_events():
    counts, truth = simulate(600, events=12, seed=1)
    result = sendtime.best_hours(counts, seed=0)
    confident = ~result.thin
    assert confident.mean() > 0.9
    within_one = circular_distance(result.hour[confident], truth[confident]) <= 1
    assert within_one.mean() > 0.9
    assert result.strength_basis.startswith("empirical Bayes")
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0)


def test_one_click_does_not_decide():
    counts, _ = simulate(300, events=10, seed=2)
    lonely = np.zeros((1, 24))
    lonely[0, 3] = 1  # one click at 03:00
    result = sendtime.best_hours(np.vstack([counts, lonely]))
    assert result.thin[-1]
    assert result.weight[-1] < 0.5  # the workspace profile outweighs one event
    assert result.posterior[-1, 3] < 0.2


def test_thin_workspace_has_no_best_hour():
    counts = np.zeros((5, 24))
    counts[:, 9] = 1
    result = sendtime.best_hours(counts)
    assert result.thin.all()
    assert result.workspace_hour is None  # callers keep the campaign's own time
    assert result.strength_basis.startswith("default")


def test_shrinkage_grows_with_evidence():
    counts, _ = simulate(300, events=8, seed=3)
    few, many = np.zeros(24), np.zeros(24)
    few[20], many[20] = 2, 20
    result = sendtime.best_hours(np.vstack([counts, few, many]))
    assert result.weight[-1] > result.weight[-2]
    assert result.posterior[-1, 20] > result.posterior[-2, 20]
    assert result.hour[-1] == 20
    assert result.confidence[-1] > 0.9


def test_midnight_neighbours_eleven_pm():
    smoothed = sendtime.smooth(np.eye(24)[0])
    assert smoothed[23] == smoothed[1] == 0.25 and smoothed.sum() == pytest.approx(1)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError):
        sendtime.best_hours(-np.ones((2, 24)))
    with pytest.raises(ValueError):
        sendtime.best_hours(np.full((2, 24), np.nan))


def test_empirical_bayes_finds_a_strength_near_the_truth():
    # Profiles drawn from Dirichlet(a * q) with a = 20: the estimate should land near 20.
    rng = np.random.default_rng(4)
    q = np.full(24, 1 / 24)
    profiles = rng.dirichlet(20 * q, size=3000)
    counts = np.array([rng.multinomial(15, p) for p in profiles], dtype=float)
    strength, _ = sendtime.fit_strength(counts, q)
    assert 12 < strength < 35


GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"  # noqa: E501
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"


@pytest.mark.parametrize(
    ("agent", "after", "machine"),
    [
        ("Mozilla/5.0", 3600, True),  # Apple Mail Privacy Protection's bare agent
        (GMAIL_PROXY, 3600, True),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", 3600, True),
        (IPHONE, 30, True),  # within two minutes of the send: a prefetch
        (IPHONE, 3600, False),
        (None, 3600, True),  # recorded before user agents were: unknown, so not counted
        ("Thunderbird/115.0", None, True),
    ],
)
def test_machine_opens(agent, after, machine):
    assert sendtime.is_machine_open(agent, after) is machine


def test_scanner_clicks():
    assert sendtime.is_machine_click("Barracuda Sentinel (EE)")
    assert not sendtime.is_machine_click("Mozilla/5.0 (Macintosh) Safari/605.1.15")
