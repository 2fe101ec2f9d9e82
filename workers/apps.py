from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers and models"

    def ready(self) -> None:
        # Binds @shared_task to our app in every process (web included) and registers the
        # platform's tasks; each app registers its own when it loads.
        from workers import tasks  # noqa: F401
        from workers.celery import app  # noqa: F401
