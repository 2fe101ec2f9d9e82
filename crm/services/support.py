"""Support chat: conversations, the knowledge base the assistant answers from, and the turn
itself (run on a worker, where the language model is loaded once).

A customer's orders reach the assistant only through `conversation.customer`, which is set
when the person was identified (a signed link from our e-mails, or an API caller that names
them); whatever a message says, no other customer's rows are read.
"""

import logging
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.dispatch import Signal
from django.utils import timezone

from crm import selectors
from crm.models import ChatMessage, Conversation, Customer, KnowledgeArticle, Order, Workspace
from crm.services.privacy import customer_erased
from workers.services import task_named

log = logging.getLogger(__name__)
DEMO_KNOWLEDGE = Path(__file__).resolve().parent.parent / "demo" / "knowledge"
IDENTITY_SALT = "marketing_ai.chat.customer"

# Sent inside the turn's short final transaction when a customer asks for a person: the campaigns
# app turns it into a `conversation.waiting` webhook, so a helpdesk outside can pick it up too.
conversation_waiting = Signal()
MAX_TEXT = 2000
CHAT_REPLY = "crm.tasks.chat.chat_reply"  # the reply turn, on a gpu worker


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
    """The customer a signed chat link names, or None (forged, another salt, or older than
    CHAT_LINK_MAX_AGE seconds: the link's lifetime is the identity's)."""
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
              customer: Customer | None = None, speaks_for_customer: bool = False,
              ) -> ChatMessage:  # fmt: skip
    """Stores a customer's message (new conversation unless `conversation` names one of this
    workspace's) and queues the assistant's answer. The identity of a conversation never changes
    once set: a later message cannot claim to be somebody else. An identified conversation takes
    messages only from whoever proves the identity again: the signed link (`customer`), or an
    API caller (`speaks_for_customer`, its key already vouches for the workspace's customers);
    the bare conversation token is not enough to go on asking as the customer."""
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
        if found.customer_id is not None and customer is None and not speaks_for_customer:
            raise ChatError({"identity": ["open the chat again from the link in your e-mail"]})
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
        conversation=found, role=ChatMessage.Role.CUSTOMER, text=text,
        reply_queued_at=timezone.now(), reply_attempts=1,
    )  # fmt: skip
    chat_reply = task_named(CHAT_REPLY)
    transaction.on_commit(lambda: chat_reply.delay(message.pk))
    return message


def conversation_readable(conversation: Conversation, customer: Customer | None) -> bool:
    """Whether someone holding the conversation's token (and `customer`, from a signed link, or
    None) may read it: an anonymous chat by its token alone, an identified one only with a link
    that names its customer (so a leaked token does not show the customer's orders)."""
    return conversation.customer_id is None or (
        customer is not None and customer.pk == conversation.customer_id
    )


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


def _turn_facts(message_id: int) -> tuple[ChatMessage, list | None] | None:
    """The unanswered customer message and the identified customer's orders (None when nobody
    is identified), read in autocommit: no transaction stays open while the model writes."""
    message = (
        ChatMessage.objects.select_related("conversation__customer")
        .filter(pk=message_id, role=ChatMessage.Role.CUSTOMER, answered=False)
        .first()
    )
    if message is None:
        return None
    customer = message.conversation.customer
    identified = customer is not None and customer.erased_at is None
    return message, (_orders(customer) if identified else None)


def _turn_save(message: ChatMessage, reply) -> ChatMessage | None:
    """Writes `reply` (an assistant Reply) in one short transaction. The message is claimed by
    flipping `answered` where it is still false, so of two workers that answered the same
    message only the first writes a reply. A conversation that staff took over meanwhile gets
    none. Returns the reply row, or None."""
    conversation = message.conversation
    with transaction.atomic():
        claimed = ChatMessage.objects.filter(pk=message.pk, answered=False).update(
            intent=reply.intent, refused=reply.refused, answered=True
        )
        if not claimed:
            return None  # another worker answered it, or staff did
        status = Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True)
        if status.first() == Conversation.Status.WAITING:
            return None
        articles = {a.pk: a for a in KnowledgeArticle.objects.filter(pk__in=reply.citations)}
        citations = [{"id": a, "slug": articles[a].slug, "title": articles[a].title}
                     for a in reply.citations if a in articles]  # fmt: skip
        answer = ChatMessage.objects.create(
            conversation=conversation, role=ChatMessage.Role.ASSISTANT, text=reply.text,
            intent=reply.intent, citations=citations, refused=reply.refused,
            source=reply.source, answered=True,
        )  # fmt: skip
        changes = {"updated_at": timezone.now()}
        if reply.handoff:
            changes["status"] = conversation.status = Conversation.Status.WAITING
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
        if reply.handoff:
            conversation_waiting.send(
                sender=Conversation, conversation=conversation, message=message
            )
    return answer


def chat_answer(message_id: int, with_model: bool = True) -> ChatMessage | None:
    """The assistant's reply to one customer message; safe to run twice, also at the same time
    (one reply at most). Read, generate outside any transaction, then write briefly: on SQLite
    every writer would otherwise wait behind a chat turn. A conversation waiting for staff gets
    no automatic reply."""
    facts = _turn_facts(message_id)
    if facts is None:
        return None
    message, orders = facts
    conversation = message.conversation
    if conversation.status == Conversation.Status.WAITING:
        ChatMessage.objects.filter(pk=message.pk, answered=False).update(answered=True)
        return None
    bot = assistant(conversation.workspace_id, with_model=with_model)
    reply = bot.reply(message.text, orders=orders, identified=orders is not None)
    return _turn_save(message, reply)


GIVE_UP = ("Sorry, I couldn't answer that just now. I've asked a member of our team to join this "
           "conversation; they'll reply here.")  # fmt: skip


def chat_unanswered_requeue(*, older_than: float | None = None,
                            max_attempts: int | None = None) -> dict:  # fmt: skip
    """Queues the reply task again for customer messages still unanswered `older_than` seconds
    (default CHAT_REQUEUE_SECONDS) after it was last queued: the worker died mid-turn, or the
    broker lost the task. Each row is claimed by moving its `reply_queued_at`, so two sweeps
    queue it once; a second reply can never result (the turn's claim). After `max_attempts`
    (CHAT_REPLY_MAX_ATTEMPTS) the customer is told, and the conversation waits for staff.
    Returns {"requeued": n, "handed_over": n}."""
    older_than = settings.CHAT_REQUEUE_SECONDS if older_than is None else older_than
    max_attempts = settings.CHAT_REPLY_MAX_ATTEMPTS if max_attempts is None else max_attempts
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than)
    stale = ChatMessage.objects.filter(
        Q(reply_queued_at__lt=cutoff) | Q(reply_queued_at__isnull=True, created_at__lt=cutoff),
        role=ChatMessage.Role.CUSTOMER, answered=False,
    ).values_list("pk", "reply_queued_at", "reply_attempts")[:500]  # fmt: skip
    chat_reply = task_named(CHAT_REPLY)
    counts = {"requeued": 0, "handed_over": 0}
    for pk, queued_at, attempts in stale:
        if attempts >= max_attempts:
            counts["handed_over"] += _give_up(pk)
            continue
        claimed = ChatMessage.objects.filter(
            pk=pk, answered=False, reply_queued_at=queued_at, reply_attempts=attempts
        ).update(reply_queued_at=now, reply_attempts=F("reply_attempts") + 1)  # fmt: skip
        if claimed:
            chat_reply.delay(pk)
            counts["requeued"] += 1
    if any(counts.values()):
        log.warning("chat sweep: %(requeued)d message(s) queued again, %(handed_over)d handed "
                    "over to staff", counts)  # fmt: skip
    return counts


def _give_up(message_id: int) -> int:
    """Tells the customer a person will answer and hands the conversation to staff."""
    from marketing_ai.ml.language.assistant import Reply

    message = ChatMessage.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return 0
    handed = _turn_save(message, Reply(GIVE_UP, "human", handoff=True, source="fixed"))
    return int(handed is not None)


def conversation_pending(conversation: Conversation) -> bool:
    """Whether a customer message of `conversation` still waits for the assistant."""
    return conversation.messages.filter(role=ChatMessage.Role.CUSTOMER, answered=False).exists()


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
    # The id, not the token: the token is the visitor's handle, not something to hand around.
    return [
        {"id": c.pk, "status": c.status, "created_at": c.created_at,
         "messages": conversation_messages(c)}
        for c in Conversation.objects.filter(customer=customer).order_by("pk")
    ]  # fmt: skip


def conversations_timeline(customer: Customer, limit: int) -> list[dict]:
    rows = (
        Conversation.objects.filter(customer=customer)
        .annotate(message_count=Count("messages")).order_by("-created_at")[:limit]
    )  # fmt: skip
    return [{"at": c.created_at, "kind": "conversation", "id": c.pk, "status": c.status,
             "messages": c.message_count} for c in rows]  # fmt: skip


def erase_conversations(sender, customer: Customer, counts: dict, **_) -> None:
    counts["conversations"] = Conversation.objects.filter(customer=customer).delete()[0]


def connect() -> None:
    selectors.EXPORT_SECTIONS["conversations"] = conversations_export
    selectors.TIMELINE_SOURCES.append(conversations_timeline)
    customer_erased.connect(erase_conversations, dispatch_uid="crm.erase_conversations")
