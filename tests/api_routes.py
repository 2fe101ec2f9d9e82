"""The API's routes as the URL configuration has them, for the tests that walk every one
(isolation, trailing slashes, allowed methods): a new route is covered, or fails them, at once."""

import re

from django.urls import URLPattern, URLResolver, get_resolver


def api_views() -> dict[str, type]:
    """Each route under /api/v1/ as its pattern string ('campaigns/<int:pk>/variants') and the
    view class that answers it."""
    found = {}

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith(
                "api/v1/"
            ):
                route = (prefix + str(entry.pattern)).removeprefix("api/v1/")
                found[route.removeprefix("^").removesuffix("$")] = entry.callback.cls

    walk(get_resolver().url_patterns, "")
    return found


def api_routes() -> list[str]:
    return list(api_views())


_PLACEHOLDER = re.compile(r"<(?:\w+:)?(?P<name>\w+)>|\(\?P<(?P<group>\w+)>[^)]*\)")


def concrete(route: str, world: dict) -> str:
    """The route with a real id in place of each placeholder: `world` (the fixture in
    tests/conftest.py) has the ids by resource (`pks`) and by placeholder name (`values`)."""

    def value(match: re.Match) -> str:
        name = match["name"] or match["group"]
        if name == "pk":
            return str(world["pks"][route.split("/")[0]])
        assert name in world["values"], f"{route}: no value for <{name}> in this test"
        return str(world["values"][name])

    return _PLACEHOLDER.sub(value, route)
