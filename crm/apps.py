from django.apps import AppConfig
from django.contrib.postgres.indexes import OpClass
from django.db.models import OrderBy
from django.db.models.functions import Collate
from django.db.models.indexes import IndexExpression


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        # lookups registers field__any, schema the API key security scheme, tasks and
        # support_tasks the CRM's Celery tasks (in every process, the web's included).
        from crm import lookups, recommendation_cache, tasks  # noqa: F401
        from crm.api import schema  # noqa: F401
        from crm.support import services as support
        from crm.support import tasks as support_tasks  # noqa: F401
        from workers import services as runs

        # Index expressions that are operator classes (crm.models.customers.PrefixIndex) go
        # into CREATE INDEX unwrapped, as django.contrib.postgres's app would register them;
        # that app's other registrations (type handlers on every connection) we do not need.
        IndexExpression.register_wrappers(OrderBy, OpClass, Collate)
        support.connect()
        recommendation_cache.connect()
        # What a promoted or rolled-back version rewrites (workers.services.model_version_promote).
        runs.rescoring_register(family="recommend.", task="crm.tasks.models.write_recommendations")
        runs.rescoring_register(family="predict.churn", task="crm.tasks.models.score_churn")
        runs.rescoring_register(family="predict.clv", task="crm.tasks.models.score_clv")
