"""crm.selectors.forecasts: the order lines the forecast learns from, summed by the database,
and one series' history beside its stored forecast."""

from datetime import UTC, date, datetime

import pytest

from crm import services
from crm.models import Customer, Order, Product
from crm.selectors import forecasts as selectors
from tests.crm.forecast_data import stored_version

pytestmark = pytest.mark.django_db


def order(workspace, ext, day, lines, *, customer=None, kind="order", status="placed"):
    result = services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": ext,
                "customer": customer,
                "kind": kind,
                "status": status,
                "placed_at": datetime(2011, 12, day, 10, tzinfo=UTC).isoformat(),
                "lines": [{"sku": s, "quantity": q, "unit_price": 2} for s, q in lines],
            }
        ],
    )
    assert not result.errors, result.errors


def test_lines_are_summed_per_day_product_and_country(workspace):
    services.product_bulk_upsert(
        workspace=workspace,
        rows=[{"sku": "A", "name": "A"}, {"sku": "B", "name": "B"}, {"sku": "POST", "name": "P"}],
    )
    gb = services.customer_bulk_upsert(
        workspace=workspace, rows=[{"email": "gb@x.io", "country": "GB"}]
    ).ids[0]
    blank = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": "n@x.io"}]).ids[0]
    gone = services.customer_bulk_upsert(
        workspace=workspace, rows=[{"email": "e@x.io", "country": "FR"}]
    ).ids[0]
    order(workspace, "o1", 5, [("A", 3), ("B", 1)], customer=gb)
    order(workspace, "o2", 5, [("A", 2)], customer=gb)  # same day, product, country: one row
    order(workspace, "r1", 5, [("A", 1)], customer=gb, kind="return")  # negative
    order(workspace, "c1", 5, [("A", 50)], customer=gb, status="cancelled")  # left out
    order(workspace, "g1", 6, [("A", 4)])  # a guest
    order(workspace, "n1", 6, [("A", 1)], customer=blank)  # no country given
    order(workspace, "e1", 6, [("B", 7)], customer=gone)
    order(workspace, "p1", 6, [("POST", 1)], customer=gb)  # postage: inactive, left out
    Product.objects.filter(workspace=workspace, sku="POST").update(active=False)
    services.privacy_erase(customer=Customer.objects.get(pk=gone), actor="test")

    frame = selectors.order_lines_frame(workspace.pk)
    rows = {
        (r.date.date(), r.product, r.country): (r.units, r.revenue)
        for r in frame.itertuples(index=False)
    }
    assert rows == {
        (date(2011, 12, 5), "A", "GB"): (4.0, 8.0),
        (date(2011, 12, 5), "B", "GB"): (1.0, 2.0),
        (date(2011, 12, 6), "A", "Unknown"): (5.0, 10.0),  # the guest and the blank country
        (date(2011, 12, 6), "B", "Unknown"): (7.0, 14.0),  # erased: nobody's country now
    }
    assert selectors.data_end(workspace.pk) == date(2011, 12, 6)
    assert Order.objects.filter(workspace=workspace).count() == 8


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("total", ("total", "")),
        ("country:GB", ("country", "GB")),
        ("product:85123A", ("product", "85123A")),
        ("product:A:B", ("product", "A:B")),
        ("group:3", ("group", "3")),
    ],
)
def test_series_names_parse(text, parsed):
    assert selectors.parse_series(text) == parsed


@pytest.mark.parametrize("text", ["", "totals", "country", "country:", "city:Paris", "group:x",
                                  "group:²", "product:" + "x" * 201])  # fmt: skip
def test_bad_series_names_say_what_is_expected(text):
    with pytest.raises(selectors.SeriesError) as caught:
        selectors.parse_series(text)
    assert caught.value.field == "series" and str(caught.value)


def test_a_series_history_ends_where_its_forecast_starts(workspace):
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "MUG", "name": "Mug"}])
    sales = [("a", (2011, 11, 28), 2), ("b", (2011, 11, 30), 3), ("c", (2011, 12, 5), 4),
             ("d", (2011, 12, 12), 9)]  # fmt: skip
    for ext, when, qty in sales:
        services.order_bulk_upsert(
            workspace=workspace,
            rows=[
                {
                    "external_id": ext,
                    "placed_at": datetime(*when, 9, tzinfo=UTC).isoformat(),
                    "lines": [{"sku": "MUG", "quantity": qty, "unit_price": 1}],
                }
            ],
        )
    stored_version(workspace, first_week=date(2011, 12, 5), weeks=2)
    body = selectors.forecast_series(workspace.pk, series="product:MUG")
    history = {h["period_start"]: h["actual"] for h in body["history"]}
    # 52 weeks back from the forecast's first week; past the origin, the weeks the data now
    # holds whole: it ends on 12 Dec, so the week of 5 Dec shows, the week of 12 Dec does not.
    assert history[date(2011, 11, 28)] == 5.0
    assert history[date(2011, 12, 5)] == 4.0
    assert date(2011, 12, 12) not in history
    assert min(history) == date(2011, 11, 28)  # the first week with orders
    assert [f["period_start"] for f in body["forecast"]] == [date(2011, 12, 5), date(2011, 12, 12)]
    assert body["version"]["origin"] == date(2011, 11, 28)
