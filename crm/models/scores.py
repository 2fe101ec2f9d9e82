"""What the models say about each customer: scores with their reasons, recommended products."""

from django.db import models

from crm.models.customers import Customer
from crm.models.workspaces import Workspace


class CustomerScore(models.Model):
    """The latest model score of one kind for a customer, with the reasons behind it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="scores")
    kind = models.CharField(max_length=50, help_text="e.g. churn_risk, clv_12m")
    value = models.FloatField()
    model_version = models.ForeignKey(
        "workers.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reasons = models.JSONField(default=list, blank=True, help_text="top feature contributions")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind"], name="score_unique_kind"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "kind", "value"], include=["customer"], name="score_kind_value"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}={self.value:.3g}"


class Recommendation(models.Model):
    """A customer's precomputed top products from the active recommender version."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="recommendation"
    )
    products = models.JSONField(default=list, help_text="[[product id, score], ...], best first")
    model_version = models.ForeignKey(
        "workers.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"recommendations for {self.customer_id}"
