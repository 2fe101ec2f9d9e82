from django.urls import path, re_path

from campaigns.api import views
from campaigns.journeys import api as journeys

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
    path("campaigns/<int:pk>/policy-evaluation", views.CampaignPolicyEvaluationApi.as_view()),
    path("campaigns/<int:pk>/variants", views.VariantListApi.as_view()),
    path("campaigns/<int:pk>/variants/<int:variant_pk>", views.VariantDetailApi.as_view()),
    path("campaigns/<int:pk>/variants/<int:variant_pk>/approve", views.VariantApproveApi.as_view()),
    path("content/generate", views.ContentGenerateApi.as_view()),
    path("content/rising-products", views.ContentRisingProductsApi.as_view()),
    path("webhooks", views.WebhookListApi.as_view()),
    path("webhooks/<int:pk>", views.WebhookDetailApi.as_view()),
    path("webhooks/<int:pk>/deliveries", views.WebhookDeliveriesApi.as_view()),
    path("journeys", journeys.JourneyListApi.as_view()),
    path("journeys/<int:pk>", journeys.JourneyDetailApi.as_view()),
    path("journeys/templates/<str:name>", journeys.JourneyTemplateApi.as_view()),
    path("journeys/<int:pk>/publish", journeys.JourneyPublishApi.as_view()),
    path("journeys/<int:pk>/pause", journeys.JourneyPauseApi.as_view()),
    path("journeys/<int:pk>/resume", journeys.JourneyResumeApi.as_view()),
    path("journeys/<int:pk>/stop", journeys.JourneyStopApi.as_view()),
    path("journeys/<int:pk>/move", journeys.JourneyMoveApi.as_view()),
    path("journeys/<int:pk>/stats", journeys.JourneyStatsApi.as_view()),
    path("journeys/<int:pk>/enrolments", journeys.JourneyEnrolmentsApi.as_view()),
    path(
        "journeys/<int:pk>/enrolments/<int:enrolment_pk>/exit",
        journeys.EnrolmentExitApi.as_view(),
    ),
    re_path(r"^customers/(?P<ref>[^/]+)/journeys$", journeys.CustomerJourneysApi.as_view()),
]
