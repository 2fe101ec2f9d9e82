from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from campaigns.deliverability import webhooks as esp_webhooks
from marketing_ai.health import healthz
from marketing_ai.slash import slash_optional

admin.site.site_header = "marketing_ai"
admin.site.site_title = "marketing_ai"
admin.site.index_title = "Marketing automation"

api_v1 = [
    path("", include("crm.api.urls")),
    path("", include("campaigns.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    slash_optional("api/v1/", api_v1),  # customers/ answers as customers does
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("webhooks/anymail/", include(esp_webhooks.urlpatterns())),
    path("", include("campaigns.urls")),
    path("", include("crm.urls")),
]
