"""Public support pages: the chat widget and the help articles it cites.

The widget posts JSON to /chat/<workspace>/messages. A visitor who opened it from a signed link
(`?c=...`, in our e-mails) is identified and may ask about their own orders; anyone else chats
anonymously. There is no session: the signed link is the only credential, so no CSRF token.
"""

import json

import markdown
import nh3
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from crm.models import Conversation, KnowledgeArticle, Workspace
from crm.services import support

MAX_MESSAGES = 100  # per conversation, from the public page


@require_GET
@never_cache
def chat_page(request: HttpRequest, workspace: str) -> HttpResponse:
    space = get_object_or_404(Workspace, slug=workspace)
    identity = request.GET.get("c", "")
    customer = support.customer_from_token(identity) if identity else None
    if customer is not None and customer.workspace_id != space.pk:
        customer = None
    context = {"workspace": space, "identity": identity if customer else "",
               "greeting": customer.first_name if customer else "",
               "post_url": reverse("chat-messages", args=[space.slug])}  # fmt: skip
    return render(request, "crm/chat.html", context)


@csrf_exempt
@require_POST
@never_cache
def chat_messages(request: HttpRequest, workspace: str) -> JsonResponse:
    space = get_object_or_404(Workspace, slug=workspace)
    try:
        body = json.loads(request.body or b"{}")
        assert isinstance(body, dict)
    except (ValueError, AssertionError):
        return JsonResponse({"errors": {"body": ["send a JSON object"]}}, status=400)
    customer = None
    if body.get("identity"):
        customer = support.customer_from_token(str(body["identity"]))
        if customer is None or customer.workspace_id != space.pk:
            return JsonResponse({"errors": {"identity": ["this link is not valid"]}}, status=400)
    token = str(body.get("conversation") or "")
    if token and Conversation.objects.filter(workspace=space, token=token).exists():
        count = Conversation.objects.get(workspace=space, token=token).messages.count()
        if count >= MAX_MESSAGES:
            return JsonResponse({"errors": {"conversation": ["start a new chat"]}}, status=400)
    try:
        message = support.chat_post(workspace=space, text=str(body.get("message") or ""),
                                    conversation=token, customer=customer)  # fmt: skip
    except support.ChatError as exc:
        return JsonResponse({"errors": exc.errors}, status=400)
    reply = support.chat_wait(message, settings.CHAT_WAIT_SECONDS)
    shaped = None
    if reply is not None:
        shaped = {"text": reply.text, "role": reply.role, "citations": [
            {"title": c["title"], "url": reverse("help-article", args=[space.slug, c["slug"]])}
            for c in reply.citations
        ]}  # fmt: skip
    conversation = message.conversation
    conversation.refresh_from_db(fields=["status"])
    return JsonResponse({"conversation": conversation.token, "status": conversation.status,
                         "reply": shaped}, status=200 if reply else 202)  # fmt: skip


@require_GET
def help_article(request: HttpRequest, workspace: str, slug: str) -> HttpResponse:
    article = KnowledgeArticle.objects.filter(
        workspace__slug=workspace, slug=slug, published=True
    ).first()
    if article is None:
        raise Http404("no such article")
    body = nh3.clean(markdown.markdown(article.body))  # staff write it; still never raw HTML
    return render(request, "crm/article.html", {"article": article, "body": body})
