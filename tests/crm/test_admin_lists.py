"""crm.admin.lists and the scaled lists' pieces: counts capped (or PostgreSQL's estimate for an
unfiltered list) and shown as such, pages as deep as MAX_PAGES, filter choices read off an
index, the customer search by indexed beginnings and exact ids (and the indexes it needs usable
on PostgreSQL), and per-row figures computed for the page alone — each sealed to the user's
workspaces."""

import re
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from crm.admin import lists
from crm.models import Customer, ExternalIdentity
from crm.selectors.search import customer_search
from tests.crm.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db


def listed(page: str, model: str = "customer") -> set[int]:
    return {int(pk) for pk in re.findall(rf"/admin/crm/{model}/(\d+)/change/", page)}


def test_a_list_past_the_cap_shows_a_capped_count_and_never_counts_it_all(
    staff, workspace, monkeypatch
):
    monkeypatch.setattr(lists, "COUNT_CAP", 5)
    for i in range(8):
        CustomerFactory(workspace=workspace, email=f"c{i}@example.com", country="DE")
    filtered = staff.get("/admin/crm/customer/?country=DE").content.decode()
    assert "5+ customers" in filtered
    searched = staff.get("/admin/crm/customer/?q=c1@").content.decode()
    assert "1 result" in searched and "1 customer" in searched
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE crm_customer")
    unfiltered = staff.get("/admin/crm/customer/").content.decode()
    if connection.vendor == "postgresql":  # the planner's estimate, from fresh statistics
        assert re.search(r"about \d+ customers", unfiltered), unfiltered
    else:
        assert "5+ customers" in unfiltered


def test_pages_stop_at_max_pages_when_the_count_is_not_exact(workspace, monkeypatch):
    monkeypatch.setattr(lists, "COUNT_CAP", 5)
    monkeypatch.setattr(lists, "MAX_PAGES", 2)
    for i in range(9):
        CustomerFactory(workspace=workspace, email=f"p{i}@example.com")
    paginator = lists.ScaledPaginator(Customer.objects.order_by("pk"), 2)
    assert paginator.count == 5 and not paginator.exact and paginator.num_pages == 2
    first_four = Customer.objects.order_by("pk").values("pk")[:4]
    exact = lists.ScaledPaginator(Customer.objects.filter(pk__in=first_four).order_by("pk"), 2)
    assert exact.count == 4 and exact.exact and exact.num_pages == 2


def test_filter_choices_come_from_the_users_workspaces_only(staff, workspace, other_workspace):
    CustomerFactory(workspace=workspace, country="FR")
    CustomerFactory(workspace=workspace, country="AT")
    CustomerFactory(workspace=other_workspace, country="JP")
    customer = CustomerFactory(workspace=workspace)
    EventFactory(workspace=workspace, customer=customer, type="view")
    EventFactory(workspace=other_workspace, customer=CustomerFactory(workspace=other_workspace),
                 type="secret_type")  # fmt: skip
    page = staff.get("/admin/crm/customer/").content.decode()
    assert "?country=FR" in page and "?country=AT" in page and "?country=JP" not in page
    events = staff.get("/admin/crm/event/").content.decode()
    assert "?type=view" in events and "secret_type" not in events
    only_fr = staff.get("/admin/crm/customer/?country=FR").content.decode()
    assert len(listed(only_fr)) == 1


def test_the_search_finds_by_indexed_beginnings_and_exact_ids_in_the_workspace(
    staff, workspace, other_workspace
):
    ann = CustomerFactory(
        workspace=workspace, email="ann.lee@shop.example", first_name="Ann", last_name="Lee"
    )
    bob = CustomerFactory(
        workspace=workspace, email="bob@mail.example", first_name="Robert", last_name="Annan",
        phone="+44 20 7946 0000",
    )  # fmt: skip
    ExternalIdentity.objects.create(
        workspace=workspace, customer=bob, source="shopify", external_id="SH-991"
    )
    theirs = CustomerFactory(workspace=other_workspace, email="ann.other@shop.example",
                             first_name="Ann")  # fmt: skip

    def found(term: str) -> set[int]:
        return listed(staff.get("/admin/crm/customer/", {"q": term}).content.decode())

    assert found("ann.lee@shop.example") == {ann.pk}  # the whole address
    assert found("ANN.L") == {ann.pk}  # its beginning, any case
    assert found("ann") == {ann.pk, bob.pk}  # Ann's first name, Annan's last
    assert found("lee@shop") == set()  # not from the middle of an address
    assert found("+44 20 7946 0000") == {bob.pk}
    assert found("SH-991") == {bob.pk}
    assert theirs.pk not in found("ann") | found("ann.other@shop.example")


class _Rollback(Exception):
    pass


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
@pytest.mark.parametrize(
    "index", ["customer_email_prefix", "customer_first_name_prefix", "customer_last_name_prefix"]
)
def test_the_search_can_use_its_prefix_indexes_on_postgresql(workspace, index):
    """Whatever the database's collation: the pattern operator classes make LIKE 'ANN%' an
    index range. On a near-empty table any index leading with the workspace would do, so the
    customers' other indexes are dropped for the look (inside a savepoint, rolled back)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'crm_customer' "
                "AND indexname NOT LIKE '%%pkey' AND indexname <> %s",
                [index],
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute("SET LOCAL enable_seqscan = off")
            search = customer_search("Ann", [workspace.pk])
            plan = Customer.objects.filter(workspace_id=workspace.pk).filter(search).explain()
            assert f"using {index} " in plan and "~>=~" in plan and "~<~" in plan, plan
            raise _Rollback
    except _Rollback:
        pass


def test_the_orders_column_counts_the_pages_customers(staff, workspace):
    buyer = CustomerFactory(workspace=workspace)
    OrderFactory(workspace=workspace, customer=buyer)
    OrderFactory(workspace=workspace, customer=buyer)
    quiet = CustomerFactory(workspace=workspace)
    page = staff.get("/admin/crm/customer/").content.decode()
    rows = {
        int(pk): cells
        for pk, cells in re.findall(r"/admin/crm/customer/(\d+)/change/(.*?)</tr>", page, re.S)
    }
    assert 'class="field-orders">2<' in rows[buyer.pk]
    assert 'class="field-orders">0<' in rows[quiet.pk]


def test_every_indexed_values_filter_has_its_index():
    """IndexedValuesFilter reads one index probe per value only where an index leads with
    (workspace, the column): without one each probe would read the table."""
    from django.contrib import admin as django_admin

    from crm.admin.scope import IndexedValuesFilter

    uses = []
    for model, model_admin in django_admin.site._registry.items():
        for entry in model_admin.list_filter:
            if isinstance(entry, tuple) and entry[1] is IndexedValuesFilter:
                uses.append((model, entry[0]))
                leading = {tuple(index.fields[:2]) for index in model._meta.indexes if index.fields}
                assert ("workspace", entry[0]) in leading, f"{model.__name__}.{entry[0]}"
    assert len(uses) >= 2


def test_the_orders_date_drill_down_offers_the_span_of_the_orders(
    staff, workspace, other_workspace
):
    customer = CustomerFactory(workspace=workspace)
    for when in (datetime(2009, 12, 30, tzinfo=UTC), datetime(2011, 3, 2, tzinfo=UTC)):
        OrderFactory(workspace=workspace, customer=customer, placed_at=when)
    OrderFactory(workspace=other_workspace, placed_at=datetime(2003, 5, 1, tzinfo=UTC))
    page = staff.get("/admin/crm/order/").content.decode()
    years = re.findall(r"placed_at__year=(\d{4})\"", page)
    assert years == ["2009", "2010", "2011"], years  # 2010 has no order but lies in the span
    in_2011 = staff.get("/admin/crm/order/?placed_at__year=2011").content.decode()
    months = re.findall(r"placed_at__month=(\d+)&amp;placed_at__year=2011", in_2011) or re.findall(
        r"placed_at__year=2011&amp;placed_at__month=(\d+)", in_2011
    )
    assert months == ["3"], months
    assert len(listed(in_2011, "order")) == 1
