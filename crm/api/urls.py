from django.urls import path, re_path

from crm.api import forecasts, runs, segments, views
from crm.support import api as support

# Customers are addressed by id, ext:<source>:<external id> or email:<address>.
CUSTOMER = r"customers/(?P<ref>[^/]+)"

urlpatterns = [
    path("tasks/<uuid:run_id>", runs.TaskRunDetailApi.as_view(), name="task-run-detail"),
    path("customers", views.CustomerListApi.as_view()),
    path("customers/bulk", views.CustomerBulkApi.as_view()),
    re_path(rf"^{CUSTOMER}/timeline$", views.CustomerTimelineApi.as_view()),
    re_path(rf"^{CUSTOMER}/recommendations$", views.CustomerRecommendationsApi.as_view()),
    re_path(rf"^{CUSTOMER}$", views.CustomerDetailApi.as_view()),
    path("products", views.ProductListApi.as_view()),
    path("products/bulk", views.ProductBulkApi.as_view()),
    path("products/<int:pk>", views.ProductDetailApi.as_view()),
    path("orders", views.OrderListApi.as_view()),
    path("orders/bulk", views.OrderBulkApi.as_view()),
    path("orders/<int:pk>", views.OrderDetailApi.as_view()),
    path("events", views.EventListApi.as_view()),
    path("events/bulk", views.EventBulkApi.as_view()),
    path("events/<int:pk>", views.EventDetailApi.as_view()),
    path("segments", segments.SegmentListApi.as_view()),
    path("segments/preview", segments.SegmentRulesPreviewApi.as_view()),
    path("segments/<int:pk>", segments.SegmentDetailApi.as_view()),
    path("segments/<int:pk>/count", segments.SegmentCountApi.as_view()),
    path("segments/<int:pk>/preview", segments.SegmentPreviewApi.as_view()),
    path("segments/<int:pk>/members", segments.SegmentMembersApi.as_view()),
    path("segments/<int:pk>/refresh", segments.SegmentRefreshApi.as_view()),
    path("forecasts", forecasts.ForecastApi.as_view()),
    path("privacy/export", views.PrivacyExportApi.as_view()),
    path("chat", support.ChatApi.as_view()),
    path("chat/conversations/<int:pk>", support.ChatConversationApi.as_view()),
    path("chat/<str:token>", support.ChatConversationApi.as_view()),
    path("privacy/erase", views.PrivacyEraseApi.as_view()),
]
