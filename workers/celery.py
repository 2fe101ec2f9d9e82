"""The Celery app. Workers start with `celery -A workers worker -Q default,sends,ml,gpu`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")

app = Celery("marketing_ai")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks")
