"""Support chat: conversations, the knowledge base the assistant answers from, and the turn
itself (run on a worker, where the language model is loaded once).

A customer's orders reach the assistant only through `conversation.customer`, which is set
when the person was identified (a signed link from our e-mails, or an API caller that names
them); whatever a message says, no other customer's rows are read.
"""

import secrets
import time
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, Max
from django.dispatch import Signal

from crm import selectors
from crm.models import ChatMessage, Conversation, Customer, KnowledgeArticle, Order, Workspace
from crm.services.privacy import customer_erased

DEMO_KNOWLEDGE = Path(__file__).resolve().parent.parent / "demo" / "knowledge"
IDENTITY_SALT = "marketing_ai.chat.customer"

# Sent inside the turn's transaction when a customer asks for a person: the campaigns app turns
# it into a `conversation.waiting` webhook, so a helpdesk outside can pick the chat up too.
conversation_waiting = Signal()
MAX_TEXT = 2000


class ChatError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# --- identity ---------------------------------------------------------------------------


def customer_chat_token(customer: Customer) -> str:
    """A signed handle for links in our e-mails: opening the chat with it identifies them."""
    return signing.dumps({"w": customer.workspace_id, "c": customer.pk}, salt=IDENTITY_SALT)


def customer_chat_url(customer: Customer) -> str:
    """The public chat page, signed in as `customer` (PUBLIC_URL + /chat/<workspace>/?c=...)."""
    from django.urls import reverse

    path = reverse("chat", args=[customer.workspace.slug])
    return f"{settings.PUBLIC_URL}{path}?c={customer_chat_token(customer)}"


def customer_from_token(token: str) -> Customer | None:
    max_age = getattr(settings, "CHAT_LINK_MAX_AGE", 60 * 60 * 24 * 60)
    try:
        data = signing.loads(token, salt=IDENTITY_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return Customer.objects.filter(
        pk=data.get("c"), workspace_id=data.get("w"), erased_at__isnull=True
    ).first()


# --- knowledge base ---------------------------------------------------------------------


def knowledge_load(*, workspace: Workspace, folder: Path = DEMO_KNOWLEDGE) -> int:
    """Creates or updates articles from markdown files (first line "# Title"; slug = file name)."""
    count = 0
    for path in sorted(folder.glob("*.md")):
        text = path.read_text()
        first, _, rest = text.partition("\n")
        title = first.lstrip("# ").strip() if first.startswith("#") else path.stem
        KnowledgeArticle.objects.update_or_create(
            workspace=workspace, slug=path.stem,
            defaults={"title": title, "body": rest.strip() if first.startswith("#") else text},
        )  # fmt: skip
        count += 1
    return count


def _articles_signature(workspace_id: int) -> tuple:
    stats = KnowledgeArticle.objects.filter(workspace_id=workspace_id, published=True).aggregate(
        n=Count("id"), at=Max("updated_at")
    )
    return workspace_id, stats["n"], str(stats["at"])


@lru_cache(maxsize=16)
def _index(signature: tuple):
    from marketing_ai.ml.language.embeddings import encoder
    from marketing_ai.ml.language.retrieval import Index, passages

    items = []
    for article in KnowledgeArticle.objects.filter(workspace_id=signature[0], published=True):
        items += passages(article.pk, article.title, article.body)
    return Index(items, encoder())


def knowledge_index(workspace_id: int):
    """The workspace's retrieval index, rebuilt when an article changes."""
    return _index(_articles_signature(workspace_id))


def assistant(workspace_id: int, with_model: bool = True):
    """The workspace's assistant (kept per process until an article changes)."""
    use_model = with_model and getattr(settings, "CHAT_USE_MODEL", True)
    return _assistant(_articles_signature(workspace_id), use_model)


@lru_cache(maxsize=16)
def _assistant(signature: tuple, use_model: bool):
    from marketing_ai.ml.language.assistant import Assistant
    from marketing_ai.ml.language.embeddings import encoder

    model = None
    if use_model:
        from marketing_ai.ml.language.llm import language_model

        model = language_model()
    return Assistant(_index(signature), encoder(), model)


# --- conversations ----------------------------------------------------------------------


@transaction.atomic
def chat_post(*, workspace: Workspace, text: str, conversation: str = "",
              customer: Customer | None = None) -> ChatMessage:  # fmt: skip
    """Stores a customer's message (new conversation unless `conversation` names one of this
    workspace's) and queues the assistant's answer. The identity of a conversation never changes
    once set: a later message cannot claim to be somebody else."""
    text = (text or "").strip()
    if not text:
        raise ChatError({"message": ["write a message"]})
    if len(text) > MAX_TEXT:
        raise ChatError({"message": [f"at most {MAX_TEXT} characters"]})
    if conversation:
        found = Conversation.objects.select_for_update().filter(
            workspace=workspace, token=conversation
        ).first()  # fmt: skip
        if found is None:
            raise ChatError({"conversation": ["no such conversation"]})
        if customer is not None and found.customer_id not in (None, customer.pk):
            raise ChatError({"conversation": ["this conversation belongs to someone else"]})
        if found.customer_id is None and customer is not None:
            found.customer = customer
        if found.status == Conversation.Status.CLOSED:
            found.status = Conversation.Status.OPEN
        found.save()
    else:
        found = Conversation.objects.create(
            workspace=workspace, customer=customer, token=secrets.token_urlsafe(24)
        )
    message = ChatMessage.objects.create(
        conversation=found, role=ChatMessage.Role.CUSTOMER, text=text
    )
    from workers.tasks.language import chat_reply

    transaction.on_commit(lambda: chat_reply.delay(message.pk))
    return message


def _orders(customer: Customer):
    from marketing_ai.ml.language.assistant import Order as OrderFacts

    rows = (
        Order.objects.filter(customer=customer, kind=Order.Kind.ORDER)
        .order_by("-placed_at")
        .prefetch_related("lines__product")[:20]
    )
    out = []
    for order in rows:
        lines = [f"{line.quantity} × {line.product.name}" for line in order.lines.all()]
        out.append(OrderFacts(order.external_id, order.placed_at.date().isoformat(),
                              order.status, f"{order.total} {order.currency}", lines))  # fmt: skip
    return out


def chat_answer(message_id: int, with_model: bool = True) -> ChatMessage | None:
    """The assistant's reply to one customer message; safe to run twice (the second run finds
    the message answered). A conversation waiting for staff gets no automatic reply."""
    with transaction.atomic():
        message = (
            # of=self: PostgreSQL cannot lock the nullable side of the join to the customer.
            ChatMessage.objects.select_for_update(of=("self",))
            .select_related("conversation__customer")
            .filter(pk=message_id, role=ChatMessage.Role.CUSTOMER, answered=False)
            .first()
        )
        if message is None:
            return None
        conversation = message.conversation
        if conversation.status == Conversation.Status.WAITING:
            message.answered = True
            message.save(update_fields=["answered"])
            return None
        customer = conversation.customer
        identified = customer is not None and customer.erased_at is None
        orders = _orders(customer) if identified else None
        bot = assistant(conversation.workspace_id, with_model=with_model)
        reply = bot.reply(message.text, orders=orders, identified=identified)
        message.intent = reply.intent
        message.refused = reply.refused
        message.answered = True
        message.save(update_fields=["intent", "refused", "answered"])
        articles = {a.pk: a for a in KnowledgeArticle.objects.filter(pk__in=reply.citations)}
        citations = [{"id": a, "slug": articles[a].slug, "title": articles[a].title}
                     for a in reply.citations if a in articles]  # fmt: skip
        answer = ChatMessage.objects.create(
            conversation=conversation, role=ChatMessage.Role.ASSISTANT, text=reply.text,
            intent=reply.intent, citations=citations, refused=reply.refused,
            source=reply.source, answered=True,
        )  # fmt: skip
        conversation.save(update_fields=["status", "updated_at"])
        if reply.handoff:
            Conversation.objects.filter(pk=conversation.pk).update(
                status=Conversation.Status.WAITING
            )
            conversation_waiting.send(
                sender=Conversation, conversation=conversation, message=message
            )
        return answer


def chat_wait(message: ChatMessage, timeout: float) -> ChatMessage | None:
    """The reply that follows `message`, waiting up to `timeout` seconds for the worker."""
    deadline = time.monotonic() + timeout
    while True:
        # The flag first: the worker commits it with the reply, so once it reads true the
        # reply read next is there if there is one (read the other way round, a commit landing
        # between the two reads looked like an answer of silence).
        answered = ChatMessage.objects.filter(pk=message.pk, answered=True).exists()
        reply = (
            ChatMessage.objects.filter(conversation_id=message.conversation_id, pk__gt=message.pk)
            .exclude(role=ChatMessage.Role.CUSTOMER)
            .order_by("pk")
            .first()
        )
        if reply is not None or answered or time.monotonic() >= deadline:
            return reply  # None when answered with silence: staff have the conversation
        time.sleep(0.05)


def staff_reply(*, conversation: Conversation, user, text: str) -> ChatMessage:
    text = (text or "").strip()
    if not text:
        raise ChatError({"text": ["write a reply"]})
    reply = ChatMessage.objects.create(
        conversation=conversation, role=ChatMessage.Role.STAFF, text=text, author=user,
        answered=True,
    )  # fmt: skip
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.OPEN)
    return reply


def conversation_messages(conversation: Conversation) -> list[dict]:
    return list(
        conversation.messages.order_by("pk").values(
            "id", "role", "text", "intent", "citations", "refused", "created_at"
        )
    )


# --- privacy ----------------------------------------------------------------------------


def conversations_export(customer: Customer) -> list[dict]:
    return [
        {"token": c.token, "status": c.status, "created_at": c.created_at,
         "messages": conversation_messages(c)}
        for c in Conversation.objects.filter(customer=customer).order_by("pk")
    ]  # fmt: skip


def conversations_timeline(customer: Customer, limit: int) -> list[dict]:
    rows = (
        Conversation.objects.filter(customer=customer)
        .annotate(message_count=Count("messages")).order_by("-created_at")[:limit]
    )  # fmt: skip
    return [{"at": c.created_at, "kind": "conversation", "token": c.token, "status": c.status,
             "messages": c.message_count} for c in rows]  # fmt: skip


def erase_conversations(sender, customer: Customer, counts: dict, **_) -> None:
    counts["conversations"] = Conversation.objects.filter(customer=customer).delete()[0]


def connect() -> None:
    selectors.EXPORT_SECTIONS["conversations"] = conversations_export
    selectors.TIMELINE_SOURCES.append(conversations_timeline)
    customer_erased.connect(erase_conversations, dispatch_uid="crm.erase_conversations")
