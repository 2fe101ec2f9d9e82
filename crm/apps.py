from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        # lookups registers field__any, schema the API key security scheme, tasks the CRM's
        # Celery tasks (in every process, the web's included).
        from crm import lookups, tasks  # noqa: F401
        from crm.api import schema  # noqa: F401
        from crm.services import serving, support
        from crm.tasks.models import score_churn, score_clv, write_recommendations
        from workers import services as runs

        support.connect()
        serving.connect()
        # What a promoted or rolled-back version rewrites (workers.services.model_version_promote).
        runs.rescoring_register(family="recommend.", task=write_recommendations)
        runs.rescoring_register(family="predict.churn", task=score_churn)
        runs.rescoring_register(family="predict.clv", task=score_clv)
