"""The admin site marketers work in: a home page per workspace for its index, and the menu grouped
by what a marketer does (Audience, Campaigns & journeys, Content, AI models, Support, Settings),
with Celery beat's tables and other internals in one Platform group at the end.

Installed through AdminConfig (INSTALLED_APPS) as Django's default site, so every app's
`admin.register` lands here unchanged. This module is imported while apps load, before any
model, so it imports none: the home page's context comes from crm.admin.home, which hands it
over (`show_home`) when the admin modules load.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.template.response import TemplateResponse
from django.urls import reverse

# The home page's context, from crm.admin.home (show_home): that module reads models, which
# cannot be imported here.
_home: list = []


def show_home(context) -> None:
    """Make `context(request) -> dict` the home page's context (crm.admin.home calls it)."""
    _home[:] = [context]


# (group, anchor, "app_label.ModelName" in menu order). A model no group names (a new one) is
# shown in "More" rather than hidden; whole apps can be named as "app_label.*".
GROUPS: list[tuple[str, str, list[str]]] = [
    ("Audience", "audience", ["crm.Customer", "crm.Segment", "crm.Order", "crm.Event"]),
    (
        "Campaigns & journeys",
        "campaigns",
        [
            "campaigns.Campaign",
            "campaigns.Journey",
            "campaigns.Enrolment",
            "campaigns.Message",
            "campaigns.Suppression",
            "campaigns.DeliveryReport",
            "campaigns.CampaignPause",
        ],
    ),
    ("Content", "content", ["crm.Product", "campaigns.BrandRules"]),
    ("AI models", "models", ["workers.ModelVersion", "crm.Forecast", "workers.TaskRun"]),
    ("Support", "support", ["crm.Conversation", "crm.KnowledgeArticle"]),
    (
        "Settings",
        "settings",
        [
            "crm.Workspace",
            "campaigns.SendingSettings",
            "campaigns.SendingDomain",
            "campaigns.DeliverabilityPolicy",
            "campaigns.BounceMailbox",
            "campaigns.SenderProtection",
            "campaigns.WebhookEndpoint",
            "crm.ApiKey",
            "auth.User",
            "auth.Group",
            "crm.AuditEntry",
        ],
    ),
]
MORE = ("More", "more")
PLATFORM = ("Platform", "platform", ["django_celery_beat.*"])


class MarketingAdminSite(admin.AdminSite):
    site_header = "marketing_ai"
    site_title = "marketing_ai"
    index_title = "Home"

    def get_app_list(self, request, app_label=None):
        """Django's list of apps regrouped into GROUPS (an app's own page keeps its app)."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {
            f"{app['app_label']}.{model['object_name']}": model
            for app in apps
            for model in app["models"]
        }
        index = reverse("admin:index", current_app=self.name)
        taken: set[str] = set()

        def group(name: str, anchor: str, keys: list[str]) -> dict | None:
            rows = []
            for key in keys:
                if key.endswith(".*"):
                    found = [k for k in models if k.startswith(key[:-1]) and k not in taken]
                else:
                    found = [key] if key in models and key not in taken else []
                for k in found:
                    taken.add(k)
                    rows.append(models[k])
            if not rows:
                return None
            return {
                "name": name,
                "app_label": anchor,
                "app_url": f"{index}#{anchor}",
                "has_module_perms": True,
                "models": rows,
            }

        grouped = [group(*g) for g in GROUPS]
        platform = group(*PLATFORM)
        more = group(*MORE, [k for k in models if k not in taken])
        return [g for g in [*grouped, more, platform] if g is not None]

    def index(self, request, extra_context=None):
        """The chosen workspace's home page, with the grouped menu beside it."""
        context = {
            **self.each_context(request),
            "title": self.index_title,
            "subtitle": None,
            "app_list": self.get_app_list(request),
            **(_home[0](request) if _home else {}),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/crm/home.html", context)


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with MarketingAdminSite as its site."""

    default_site = "crm.admin_site.MarketingAdminSite"
