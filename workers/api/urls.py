from django.urls import path

from workers.api.views import TaskRunDetailApi

urlpatterns = [
    path("tasks/<uuid:run_id>", TaskRunDetailApi.as_view(), name="task-run-detail"),
]
