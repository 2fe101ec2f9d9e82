"""OpenAPI descriptions drf-spectacular cannot infer from our hand-written views."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "crm.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer mai_<prefix>_<secret>`; create keys with "
            "`python manage.py apikey create --workspace <slug> --scopes crm:read,crm:write`.",
        }


def filter_parameters(filterset_class) -> list[OpenApiParameter]:
    """Query parameters of a django-filter FilterSet, for views that apply it by hand."""
    return (
        [
            OpenApiParameter(name, str, OpenApiParameter.QUERY, description=f"filter: {name}")
            for name in filterset_class.base_filters
        ]
        + [
            OpenApiParameter("limit", int, OpenApiParameter.QUERY, description="page size, ≤ 1000"),
            OpenApiParameter("cursor", str, OpenApiParameter.QUERY, description="from `next`"),
        ]
        + (
            [
                OpenApiParameter(
                    "expand",
                    str,
                    OpenApiParameter.QUERY,
                    description="identities,consent: include them in each row",
                )
            ]
            if filterset_class.__name__ == "CustomerFilter"
            else []
        )
    )
