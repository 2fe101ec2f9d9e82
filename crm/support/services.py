"""Support chat's writes: the knowledge base, a customer's message (its reply queued for a
`gpu` worker), writing a reply once, the sweep that queues lost turns again and hands
conversations over to staff, staff replies; and erasure."""

import logging
import secrets
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from crm import selectors
from crm.models import ChatMessage, Conversation, Customer, KnowledgeArticle, Workspace
from crm.signals import conversation_waiting, customer_erased
from crm.support.selectors import conversations_export, conversations_timeline
from workers.services import task_named

log = logging.getLogger(__name__)
DEMO_KNOWLEDGE = Path(__file__).resolve().parent.parent / "demo" / "knowledge"
MAX_TEXT = 2000
CHAT_REPLY = "crm.support.tasks.chat_reply"  # the reply turn, on a gpu worker


class ChatError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def knowledge_load(*, workspace: Workspace, folder: Path = DEMO_KNOWLEDGE) -> int:
    """Creates or updates articles from markdown files (first line "# Title"; slug = file name)."""
    count = 0
    for path in sorted(folder.glob("*.md")):
        text = path.read_text()
        first, _, rest = text.partition("\n")
        title = first.lstrip("# ").strip() if first.startswith("#") else path.stem
        KnowledgeArticle.objects.update_or_create(
            workspace=workspace,
            slug=path.stem,
            defaults={"title": title, "body": rest.strip() if first.startswith("#") else text},
        )
        count += 1
    return count


@transaction.atomic
def chat_post(
    *,
    workspace: Workspace,
    text: str,
    conversation: str = "",
    customer: Customer | None = None,
    speaks_for_customer: bool = False,
) -> ChatMessage:
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
        found = (
            Conversation.objects.select_for_update()
            .filter(workspace=workspace, token=conversation)
            .first()
        )
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
        conversation=found,
        role=ChatMessage.Role.CUSTOMER,
        text=text,
        reply_queued_at=timezone.now(),
        reply_attempts=1,
    )
    chat_reply = task_named(CHAT_REPLY)
    transaction.on_commit(lambda: chat_reply.delay(message.pk))
    return message


def reply_save(message: ChatMessage, reply) -> ChatMessage | None:
    """Writes `reply` (an assistant Reply, or anything with its fields) in one short
    transaction. The message is claimed by flipping `answered` where it is still false, so of
    two workers that answered the same message only the first writes a reply. A conversation
    that staff took over meanwhile gets none. Returns the reply row, or None."""
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
        citations = [
            {"id": a, "slug": articles[a].slug, "title": articles[a].title}
            for a in reply.citations
            if a in articles
        ]
        answer = ChatMessage.objects.create(
            conversation=conversation,
            role=ChatMessage.Role.ASSISTANT,
            text=reply.text,
            intent=reply.intent,
            citations=citations,
            refused=reply.refused,
            source=reply.source,
            answered=True,
        )
        changes = {"updated_at": timezone.now()}
        if reply.handoff:
            changes["status"] = conversation.status = Conversation.Status.WAITING
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
        if reply.handoff:
            conversation_waiting.send(
                sender=Conversation, conversation=conversation, message=message
            )
    return answer


GIVE_UP = (
    "Sorry, I couldn't answer that just now. I've asked a member of our team to join this "
    "conversation; they'll reply here."
)


def chat_unanswered_requeue(
    *, older_than: float | None = None, max_attempts: int | None = None
) -> dict:
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
        role=ChatMessage.Role.CUSTOMER,
        answered=False,
    ).values_list("pk", "reply_queued_at", "reply_attempts")[:500]
    chat_reply = task_named(CHAT_REPLY)
    counts = {"requeued": 0, "handed_over": 0}
    for pk, queued_at, attempts in stale:
        if attempts >= max_attempts:
            counts["handed_over"] += _give_up(pk)
            continue
        claimed = ChatMessage.objects.filter(
            pk=pk, answered=False, reply_queued_at=queued_at, reply_attempts=attempts
        ).update(reply_queued_at=now, reply_attempts=F("reply_attempts") + 1)
        if claimed:
            chat_reply.delay(pk)
            counts["requeued"] += 1
    if any(counts.values()):
        log.warning(
            "chat sweep: %(requeued)d message(s) queued again, %(handed_over)d handed "
            "over to staff",
            counts,
        )
    return counts


def _give_up(message_id: int) -> int:
    """Tells the customer a person will answer and hands the conversation to staff."""
    message = ChatMessage.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return 0
    fixed = SimpleNamespace(
        text=GIVE_UP, intent="human", citations=[], refused="", handoff=True, source="fixed"
    )
    handed = reply_save(message, fixed)
    return int(handed is not None)


def staff_reply(*, conversation: Conversation, user, text: str) -> ChatMessage:
    text = (text or "").strip()
    if not text:
        raise ChatError({"text": ["write a reply"]})
    reply = ChatMessage.objects.create(
        conversation=conversation,
        role=ChatMessage.Role.STAFF,
        text=text,
        author=user,
        answered=True,
    )
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.OPEN)
    return reply


def erase_conversations(sender, customer: Customer, counts: dict, **_) -> None:
    counts["conversations"] = Conversation.objects.filter(customer=customer).delete()[0]


def connect() -> None:
    selectors.EXPORT_SECTIONS["conversations"] = conversations_export
    selectors.TIMELINE_SOURCES.append(conversations_timeline)
    customer_erased.connect(erase_conversations, dispatch_uid="crm.erase_conversations")
