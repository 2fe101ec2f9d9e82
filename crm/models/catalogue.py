"""The catalogue and what was bought from it: products, orders (and returns), order lines."""

from django.db import models

from crm.models.customers import Customer
from crm.models.workspaces import Workspace


class Product(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="products", db_index=False
    )
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=200, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="GBP")
    active = models.BooleanField(default=True, help_text="inactive products are never recommended")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sku"], name="product_unique_sku"),
        ]
        indexes = [models.Index(fields=["workspace", "id"], name="product_ws_id")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Kind(models.TextChoices):
        ORDER = "order"
        RETURN = "return"  # a credit note: negative quantities and amounts

    class Status(models.TextChoices):
        PLACED = "placed"
        CANCELLED = "cancelled"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    # Null for guest checkouts and for customers who were erased: the sale still counts in
    # product demand, but it belongs to nobody.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    external_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ORDER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLACED)
    placed_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="GBP")
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="order_unique"),
        ]
        indexes = [
            models.Index(fields=["workspace", "id"], name="order_ws_id"),
            models.Index(fields=["customer", "placed_at"]),
            models.Index(fields=["workspace", "placed_at"]),
        ]

    def __str__(self) -> str:
        return f"order {self.external_id}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.IntegerField(help_text="negative on returns")
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
