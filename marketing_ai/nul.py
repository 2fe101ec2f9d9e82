"""NUL characters (\\u0000) stop at the door of every page: PostgreSQL refuses them in text and
jsonb, so one in a query value, a path or a public page's JSON body would reach a query and
answer 500 (the chat widget's ?conversation=, a signed link's path).

The API (/api/) checks its own inputs instead, answering in its own shape ({"field": [...]}),
per row in a bulk batch so the good rows are kept (crm.validation, crm.api.base): this
middleware leaves it alone. Form fields already refuse NUL (ProhibitNullCharactersValidator).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

NUL = "\x00"
MESSAGE = "may not contain NUL (\\u0000) characters"


class RefuseNul:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return self.get_response(request)
        errors = {}
        if NUL in request.path:
            errors["path"] = [MESSAGE]
        for name, values in request.GET.lists():
            if NUL in name or any(NUL in value for value in values):
                errors[name.replace(NUL, "\ufffd")] = [MESSAGE]
        if not errors and _json_body(request) and _has_nul(request.body):
            errors["body"] = [MESSAGE]
        if errors:
            return JsonResponse({"errors": errors}, status=400)
        return self.get_response(request)


def _json_body(request: HttpRequest) -> bool:
    return request.content_type == "application/json"


def _has_nul(body: bytes) -> bool:
    # A raw NUL byte, or the escape that decodes to one (a literal backslash before it, "\\\\u0000",
    # is refused too: no public page takes that text).
    return b"\x00" in body or b"\\u0000" in body
