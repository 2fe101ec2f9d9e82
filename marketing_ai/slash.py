"""API routes answer with or without a trailing slash, decided once for the whole API.

Our routes are written without one (`customers`, `customers/<ref>`); DRF's usual form, which many
integrators type, has one. Rather than a second pattern per route (and every path twice in the
OpenAPI schema), the resolver under /api/v1/ tries a path that ends in "/" again without it when
nothing matched. The routes' pattern strings, their names and the schema stay as written.
"""

from django.urls import URLResolver
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RoutePattern


class SlashOptionalResolver(URLResolver):
    def resolve(self, path: str):
        try:
            return super().resolve(path)
        except Resolver404:
            if not path.endswith("/"):
                raise
            return super().resolve(path[:-1])


def slash_optional(route: str, patterns: list) -> SlashOptionalResolver:
    """Like path(route, include(patterns)), with every path below answering with a trailing slash
    as it does without one (`route` itself keeps its own slash: "api/v1/")."""
    return SlashOptionalResolver(RoutePattern(route, is_endpoint=False), patterns)
