"""The platform's URLs plus the plain-Django views the benchmarks compare against."""

from django.http import JsonResponse
from django.urls import include, path

from crm.models import Customer
from crm.selectors import CUSTOMER_VALUES


def plain_customers(request):
    """The anchor for the list endpoint: the same rows by `.values()`, no auth, no extras."""
    limit = min(int(request.GET.get("limit", 100)), 1000)
    rows = Customer.objects.filter(workspace__slug=request.GET["workspace"]).order_by("-id")
    return JsonResponse({"results": list(rows.values(*CUSTOMER_VALUES)[:limit])})


urlpatterns = [
    path("bench/plain-customers", plain_customers),
    path("", include("marketing_ai.urls")),
]
