from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from crm import lookups  # noqa: F401  (registers field__any)
        from crm.api import schema  # noqa: F401  (registers the API key security scheme)
        from crm.services import serving, support

        support.connect()
        serving.connect()
