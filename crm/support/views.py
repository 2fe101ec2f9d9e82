"""Public support pages: the chat widget and the help articles it cites.

The widget posts JSON to /chat/<workspace>/messages and is answered 202 at once (the message is
stored, the reply queued for a worker); it then polls for the reply, so no web worker waits on
the language model. While the model writes, each poll also carries the answer so far
(crm.support.partials says why polling and not an event stream). A visitor who opened it
from a signed link (`?c=...`, in our e-mails) is identified and may ask about their own
orders, with every message and every poll carrying the link; anyone else chats anonymously.
There is no session: the signed link is the only credential, so no CSRF token.
"""

import json
import time

import markdown
import nh3
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from crm.api.auth import _parse_rate
from crm.client_address import client_address
from crm.models import ChatMessage, Conversation, KnowledgeArticle, Workspace
from crm.support import links, partials
from crm.support import selectors as conversations
from crm.support import services as chat
from marketing_ai import kv

MAX_MESSAGES = 100  # per conversation, from the public page


@require_GET
@never_cache
def chat_page(request: HttpRequest, workspace: str) -> HttpResponse:
    space = get_object_or_404(Workspace, slug=workspace)
    identity = request.GET.get("c", "")
    customer = links.customer_from_token(identity) if identity else None
    if customer is not None and customer.workspace_id != space.pk:
        customer = None
    context = {
        "workspace": space,
        "identity": identity if customer else "",
        "greeting": customer.first_name if customer else "",
        "post_url": reverse("chat-messages", args=[space.slug]),
    }
    return render(request, "crm/chat.html", context)


def _shape(space: Workspace, reply) -> dict:
    return {
        "id": reply.pk,
        "text": reply.text,
        "role": reply.role,
        "citations": [
            {"title": c["title"], "url": reverse("help-article", args=[space.slug, c["slug"]])}
            for c in reply.citations
        ],
    }


@csrf_exempt
@never_cache
def chat_messages(request: HttpRequest, workspace: str) -> JsonResponse:
    """POST: a visitor's message; 202 with the conversation and the message's id (`after`).
    GET ?conversation=&after=<id>[&identity=]: replies since then, whether one is still
    being written (`pending`), and the text so far of those being written (`partials`:
    [{message, text}], provisional: the reply that follows replaces it)."""
    space = get_object_or_404(Workspace, slug=workspace)
    if request.method == "GET":
        return _replies_since(request, space)
    if request.method != "POST":
        return JsonResponse({"errors": {"method": ["GET or POST"]}}, status=405)
    wait = _rate_limited(request)
    if wait:
        response = JsonResponse(
            {"errors": {"message": ["too many messages; wait a minute"]}}, status=429
        )
        response["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser
        body = None
    if not isinstance(body, dict):  # (an assert here would vanish under python -O)
        return JsonResponse({"errors": {"body": ["send a JSON object"]}}, status=400)
    customer = None
    if body.get("identity"):
        customer = _identified(space, str(body["identity"]))
        if customer is None:
            return JsonResponse({"errors": {"identity": ["this link is not valid"]}}, status=400)
    token = str(body.get("conversation") or "")
    sent = ChatMessage.objects.filter(conversation__workspace=space, conversation__token=token)
    if token and sent.count() >= MAX_MESSAGES:  # one query, whether or not it exists
        return JsonResponse({"errors": {"conversation": ["start a new chat"]}}, status=400)
    try:
        message = chat.chat_post(
            workspace=space,
            text=str(body.get("message") or ""),
            conversation=token,
            customer=customer,
        )
    except chat.ChatError as exc:
        return JsonResponse({"errors": exc.errors}, status=400)
    conversation = message.conversation
    return JsonResponse(
        {"conversation": conversation.token, "status": conversation.status, "after": message.pk},
        status=202,
    )


def _identified(space: Workspace, identity: str):
    customer = links.customer_from_token(identity)
    return customer if customer is not None and customer.workspace_id == space.pk else None


def _rate_limited(request: HttpRequest) -> float:
    """Seconds to wait when this client sent more than CHAT_RATE_LIMIT messages in the
    current window (counted in Redis, shared by every web process), else 0. The client is
    the address the trusted proxies report (crm.client_address), not what it says itself."""
    limit, period = _parse_rate(settings.CHAT_RATE_LIMIT)
    now = time.time()
    window = int(now // period)
    key = f"mai:chat:{client_address(request)}:{window}"
    pipe = kv.client().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, period + 5)
    return 0.0 if pipe.execute()[0] <= limit else (window + 1) * period - now


def _replies_since(request: HttpRequest, space: Workspace) -> JsonResponse:
    # The conversation token (192 random bits, known only to the visitor's browser) is the key
    # to an anonymous chat; an identified one also needs the signed link that opened it.
    conversation = Conversation.objects.filter(
        workspace=space, token=request.GET.get("conversation", "")
    ).first()
    identity = request.GET.get("identity", "")
    customer = _identified(space, identity) if identity and conversation else None
    if conversation is None or not conversations.conversation_readable(conversation, customer):
        return JsonResponse({"errors": {"conversation": ["no such conversation"]}}, status=404)
    after = request.GET.get("after", "0")
    since = min(int(after), 2**63 - 1) if after.isascii() and after.isdigit() else 0
    replies = conversation.messages.exclude(role=ChatMessage.Role.CUSTOMER).filter(pk__gt=since)
    # The flag before the replies: a worker commits both at once, so a reply committed between
    # the two reads shows up with pending still true (one poll more), never pending false with
    # the reply missing (the widget would stop polling before it).
    unanswered = conversations.conversation_unanswered(conversation)
    shaped = [_shape(space, r) for r in replies.order_by("pk")[:MAX_MESSAGES]]
    newest = max([r["id"] for r in shaped], default=0)
    shown = partials.partials_shown(unanswered, newest)
    conversation.refresh_from_db(fields=["status"])
    return JsonResponse(
        {
            "conversation": conversation.token,
            "status": conversation.status,
            "pending": bool(unanswered),
            "replies": shaped,
            "partials": shown,
        }
    )


@require_GET
def help_article(request: HttpRequest, workspace: str, slug: str) -> HttpResponse:
    article = KnowledgeArticle.objects.filter(
        workspace__slug=workspace, slug=slug, published=True
    ).first()
    if article is None:
        raise Http404("no such article")
    body = nh3.clean(markdown.markdown(article.body))  # staff write it; still never raw HTML
    return render(request, "crm/article.html", {"article": article, "body": body})
