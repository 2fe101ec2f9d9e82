"""Recommenders: `create("ease", l2=500).fit(X)` then `.score(users)`.

Every model takes a users × items 0/1 CSR matrix to fit and returns, for a batch of user codes,
a dense (users × items) score array where higher is better. Adding a model is adding a module
with a `@register("name")` class; nothing else changes.
"""

import importlib
from collections.abc import Callable

_REGISTRY: dict[str, type] = {}
_MODULES = {"popular": "popular", "itemknn": "itemknn", "ease": "ease", "dlae": "ease",
            "als": "als", "sasrec": "sasrec"}  # fmt: skip


def register(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorate


def create(name: str, **params):
    """A new, unfitted model of family `name` (imported on first use)."""
    if name not in _REGISTRY:
        module = _MODULES.get(name)
        if module is None:
            raise ValueError(f"unknown recommender {name!r}; known: {', '.join(sorted(_MODULES))}")
        importlib.import_module(f"{__name__}.{module}")
    return _REGISTRY[name](**params)


# Sequential models fit on ordered histories (Interactions), not on a users x items matrix.
SEQUENTIAL = {"sasrec"}


def names() -> list[str]:
    """Every model the platform can train (sequential ones fit on ordered histories)."""
    return sorted(_MODULES)
