"""`python manage.py demo_carts --workspace demo`: a few of the demo's subscribed customers put
products they bought before back in a cart (`cart_updated` events with `items`), so the
abandoned-cart journey has someone to remind. Each cart has an idempotency key: running it
again records nothing new."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crm import services
from crm.models import Consent, OrderLine, Workspace


class Command(BaseCommand):
    help = "Simulated carts for a few demo customers (for the abandoned-cart journey)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--customers", type=int, default=5)

    def handle(self, *args, workspace: str, customers: int, **options) -> None:
        space = Workspace.objects.filter(slug=workspace).first()
        if space is None:
            raise CommandError(f"no workspace {workspace!r}")
        subscribed = (
            Consent.objects.filter(
                customer__workspace=space, channel="email", status=Consent.Status.SUBSCRIBED
            )
            .order_by("customer_id")
            .values_list("customer_id", flat=True)[:customers]
        )
        rows = []
        now = timezone.now().isoformat()
        for customer_id in subscribed:
            bought = OrderLine.objects.filter(order__customer_id=customer_id).order_by(
                "-order__placed_at"
            )
            skus = list(dict.fromkeys(bought.values_list("product__sku", flat=True)[:50]))[:2]
            if not skus:
                continue
            rows.append(
                {
                    "customer": str(customer_id),
                    "type": "cart_updated",
                    "occurred_at": now,
                    "idempotency_key": f"demo-cart-{customer_id}",
                    "properties": {"items": [{"sku": sku, "quantity": 1} for sku in skus]},
                }
            )
        result = services.event_bulk_create(workspace=space, rows=rows)
        self.stdout.write(f"{result.created} cart(s) left ({result.unchanged} there already)")
