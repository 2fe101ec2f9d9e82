from django.urls import path

from campaigns.api import views

urlpatterns = [
    path("campaigns", views.CampaignListApi.as_view()),
    path("campaigns/<int:pk>", views.CampaignDetailApi.as_view()),
    path("campaigns/<int:pk>/launch", views.CampaignLaunchApi.as_view()),
    path("campaigns/<int:pk>/pause", views.CampaignPauseApi.as_view()),
    path("campaigns/<int:pk>/resume", views.CampaignResumeApi.as_view()),
    path("campaigns/<int:pk>/cancel", views.CampaignCancelApi.as_view()),
    path("campaigns/<int:pk>/resend-failed", views.CampaignResendApi.as_view()),
    path("campaigns/<int:pk>/stats", views.CampaignStatsApi.as_view()),
    path("campaigns/<int:pk>/messages", views.CampaignMessagesApi.as_view()),
    path("campaigns/<int:pk>/variants", views.VariantListApi.as_view()),
    path("campaigns/<int:pk>/variants/<int:variant_pk>", views.VariantDetailApi.as_view()),
    path("campaigns/<int:pk>/variants/<int:variant_pk>/approve", views.VariantApproveApi.as_view()),
    path("content/generate", views.ContentGenerateApi.as_view()),
    path("webhooks", views.WebhookListApi.as_view()),
    path("webhooks/<int:pk>", views.WebhookDetailApi.as_view()),
    path("webhooks/<int:pk>/deliveries", views.WebhookDeliveriesApi.as_view()),
]
