"""The sequential recommender on small data made here: it must learn an order, not a taste."""

import pickle

import numpy as np
import pytest

from marketing_ai.ml import datasets, recommend

ITEMS = 12


def cycles(n_users: int = 48, length: int = 7, seed: int = 0) -> tuple[datasets.Interactions, list]:
    """Each user walks the ring 0 → 1 → … → 11 → 0 from a random start; the next item of each
    history is the one after its last. Every item is as popular as every other, so only the order
    tells the next one."""
    rng = np.random.default_rng(seed)
    users, items, times, following = [], [], [], []
    for u in range(n_users):
        start = int(rng.integers(ITEMS))
        walk = [(start + step) % ITEMS for step in range(length)]
        users += [u] * length
        items += walk
        times += list(range(length))
        following.append((walk[-1] + 1) % ITEMS)
    return datasets.from_arrays(users, items, times), following


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sasrec_learns_what_comes_next(precision):
    # bf16 runs here as autocast on the CPU: the same code path CUDA training takes.
    data, following = cycles()
    model = recommend.create(
        "sasrec",
        hidden=32,
        layers=1,
        heads=2,
        max_len=8,
        dropout=0.0,
        epochs=60,
        batch_size=16,
        lr=1e-2,
        device="cpu",
        precision=precision,
    )
    model.fit(data)
    assert model.trained_on == {"device": "cpu", "precision": precision}
    assert model.log[-1]["loss"] < model.log[0]["loss"] / 3
    scores = model.score(np.arange(data.n_users))
    predicted = data.item_labels[scores.argmax(axis=1)]
    assert np.mean(predicted == np.array(following)) >= 0.9

    again = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes, as a version stores them
    np.testing.assert_allclose(again.score(np.arange(5)), scores[:5], rtol=1e-4, atol=1e-4)


def test_sasrec_refuses_an_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        recommend.create("sasrec", precision="fp16")
