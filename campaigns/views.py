"""Public pages reached from messages: open pixel, click redirect, unsubscribe, preferences.

Every URL carries a signed token (campaigns.tracking); a bad one gets 404/400 and no redirect.
"""

import base64

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns import tracking
from campaigns.models import Message
from campaigns.services import engagement
from crm.models import Channel

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _message(token_hex: str) -> Message:
    message = (
        Message.objects.select_related("campaign", "customer", "variant")
        .filter(token=token_hex)
        .first()
    )
    if message is None or message.customer.erased_at is not None:
        raise Http404("unknown message")
    return message


def _recipient_message(signed: str) -> Message:
    """The message an unsubscribe / preference token names; 404 for any bad token."""
    try:
        return _message(tracking.read_unsubscribe(signed))
    except tracking.BadToken as exc:
        raise Http404("bad token") from exc


@never_cache
def open_pixel(request: HttpRequest, signed: str) -> HttpResponse:
    try:
        token = tracking.read_open(signed)
    except tracking.BadToken as exc:
        raise Http404("bad token") from exc
    engagement.message_opened(
        message=_message(token), user_agent=request.META.get("HTTP_USER_AGENT")
    )
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
def click(request: HttpRequest, signed: str) -> HttpResponse:
    try:
        token, url = tracking.read_click(signed)
    except tracking.BadToken:
        return HttpResponseBadRequest("This link is not valid.", content_type="text/plain")
    message = Message.objects.select_related("campaign", "variant").filter(token=token).first()
    if message is not None:
        engagement.message_clicked(
            message=message, url=url, user_agent=request.META.get("HTTP_USER_AGENT")
        )
    # The URL is the one we signed into the message: going there is not an open redirect.
    return HttpResponseRedirect(url)


@csrf_exempt  # RFC 8058: mail providers POST "List-Unsubscribe=One-Click" without a CSRF token
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, signed: str) -> HttpResponse:
    message = _recipient_message(signed)
    done = False
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        engagement.message_unsubscribe(
            message=message, source="one-click unsubscribe" if one_click else "unsubscribe page"
        )
        done = True
    context = {
        "done": done,
        "channel": message.campaign.channel,
        "preferences_url": tracking.preferences_url(message.token.hex),
    }
    return render(request, "campaigns/unsubscribe.html", context)


@csrf_exempt  # the signed token is the credential; there is no session to forge requests for
@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, signed: str) -> HttpResponse:
    message = _recipient_message(signed)
    saved = False
    if request.method == "POST":
        wanted = {c: request.POST.get(c) == "on" for c in Channel.values}
        engagement.preferences_save(message=message, wanted=wanted)
        saved = True
    choices = engagement.preferences_of(message)
    locked = engagement.preferences_locked(message)
    context = {
        "saved": saved,
        "choices": [(c, Channel(c).label, on, c in locked) for c, on in choices.items()],
    }
    return render(request, "campaigns/preferences.html", context)
