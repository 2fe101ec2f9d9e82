from django.urls import path

from campaigns import views

urlpatterns = [
    path("t/o/<str:signed>.gif", views.open_pixel, name="track-open"),
    path("t/c/<str:signed>", views.click, name="track-click"),
    path("u/<str:signed>", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:signed>", views.preferences, name="preferences"),
]
