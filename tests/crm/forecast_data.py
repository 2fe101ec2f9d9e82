"""A small shop for the forecasting tests: a few products sold every day for a year or so in two
countries (and to guests), with a weekly rhythm and a trend per product, written through the
services the API calls; and a stored forecast version for the tests that only read one."""

from datetime import UTC, date, datetime, timedelta

import numpy as np

from crm import services
from crm.models import Forecast, ForecastTrend, Workspace
from crm.selectors.forecasts import FAMILY
from workers.models import ModelVersion

START = date(2025, 1, 6)  # a Monday
PRODUCTS = {
    "MUG": "white ceramic coffee mug",
    "CUP": "blue ceramic tea cup",
    "BOWL": "ceramic breakfast bowl",
    "CARD": "christmas greeting card",
    "TAG": "christmas gift tag",
    "BOW": "red ribbon gift bow",
}
# Units a day at the start, and the change per week (MUG rises, CARD slows).
BASE = {"MUG": 4.0, "CUP": 3.0, "BOWL": 2.0, "CARD": 6.0, "TAG": 2.0, "BOW": 1.0}
DRIFT = {"MUG": 0.04, "CUP": 0.0, "BOWL": 0.0, "CARD": -0.025, "TAG": 0.0, "BOW": 0.0}


def seed_shop(workspace: Workspace, *, weeks: int = 40, start: date = START, seed: int = 0):
    """Orders for `weeks` whole weeks from `start`; returns the customer ids by country."""
    services.product_bulk_upsert(
        workspace=workspace,
        rows=[{"sku": sku, "name": name, "price": 5} for sku, name in PRODUCTS.items()],
    )
    customers = {}
    for country in ("GB", "FR"):
        customers[country] = services.customer_bulk_upsert(
            workspace=workspace,
            rows=[{"email": f"{country.lower()}@{workspace.slug}.io", "country": country}],
        ).ids[0]
    add_orders(workspace, customers, start=start, days=7 * weeks, seed=seed)
    return customers


def add_orders(
    workspace: Workspace,
    customers: dict[str, int],
    *,
    start: date,
    days: int,
    seed: int = 0,
    scale: float = 1.0,
    tag: str = "",
) -> None:
    """One order a day per country (two thirds GB, the rest FR) and one guest order, holding
    every product; `scale` multiplies the units (a spike)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        day = start + timedelta(days=d)
        week = (day - START).days / 7
        rhythm = 1.3 if day.weekday() < 5 else 0.5
        for who, share in (("GB", 0.6), ("FR", 0.3), (None, 0.1)):
            lines = []
            for sku in PRODUCTS:
                mean = BASE[sku] * (1 + DRIFT[sku] * week) * rhythm * share * scale
                quantity = int(rng.poisson(max(mean, 0.05)))
                if quantity:
                    lines.append({"sku": sku, "quantity": quantity, "unit_price": 5})
            if lines:
                placed = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
                rows.append(
                    {
                        "external_id": f"{tag}{day.isoformat()}-{who or 'guest'}",
                        "customer": customers[who] if who else None,
                        "placed_at": placed.isoformat(),
                        "lines": lines,
                    }
                )
    result = services.order_bulk_upsert(workspace=workspace, rows=rows)
    assert not result.errors, result.errors[:3]


def stored_version(
    workspace: Workspace, *, first_week: date, weeks: int = 4, mean: float = 100.0
) -> ModelVersion:
    """An active forecast version as a run stores one, without running the engine: the total's
    and GB's units for `weeks` weeks from `first_week`, and MUG rising, CARD slowing."""
    version = ModelVersion.objects.create(
        workspace=workspace,
        family=FAMILY,
        version=1,
        status=ModelVersion.Status.ACTIVE,
        metrics={"mase": 0.8, "coverage80": 0.79, "origins": 4, "mase_AutoETS": 0.9},
        params={"origin": (first_week - timedelta(days=7)).isoformat(), "groups": {"0": ["MUG"]}},
    )
    rows = []
    for level, key in (("total", ""), ("country", "GB"), ("product", "MUG"), ("group", "0")):
        for i in range(weeks):
            rows.append(
                Forecast(
                    workspace=workspace,
                    model_version=version,
                    level=level,
                    key=key,
                    measure="units",
                    frequency="week",
                    period_start=first_week + timedelta(days=7 * i),
                    mean=mean + i,
                    lower=mean * 0.8,
                    upper=mean * 1.2 + i,
                    reasons={"level": mean, "trend": i, "seasonality": 0.0},
                    model="ensemble",
                )
            )
    Forecast.objects.bulk_create(rows)
    for sku, change, lo, hi, way in (
        ("MUG", 0.3, 0.1, 0.5, "rising"),
        ("CARD", -0.2, -0.3, -0.1, "slowing"),
    ):
        ForecastTrend.objects.create(
            workspace=workspace,
            model_version=version,
            level="product",
            key=sku,
            measure="units",
            frequency="week",
            recent=10,
            forecast=10 * (1 + change),
            change=change,
            change_lower=lo,
            change_upper=hi,
            direction=way,
        )
    return version
