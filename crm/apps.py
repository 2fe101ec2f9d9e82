from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from crm import lookups  # noqa: F401  (registers field__any)
        from crm.api import schema  # noqa: F401  (registers the API key security scheme)
        from crm.services import serving, support
        from workers import services as runs
        from workers.tasks.ml import score_churn, score_clv, write_recommendations

        support.connect()
        serving.connect()
        # What a promoted or rolled-back version rewrites (workers.services.model_version_promote).
        runs.rescoring_register(family="recommend.", task=write_recommendations)
        runs.rescoring_register(family="predict.churn", task=score_churn)
        runs.rescoring_register(family="predict.clv", task=score_clv)
