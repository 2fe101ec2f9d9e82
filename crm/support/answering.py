"""The assistant's turn: the workspace's knowledge index and assistant (kept per process until
an article changes), and the reply to one customer message. Runs on a `gpu` worker, where the
language model is loaded once; this module loads numpy and the language models' code, so only
the reply task imports it.

A customer's orders reach the assistant only through `conversation.customer`, which is set
when the person was identified (a signed link from our e-mails, or an API caller that names
them); whatever a message says, no other customer's rows are read.
"""

from functools import lru_cache

from django.conf import settings
from django.db.models import Count, Max

from crm.models import ChatMessage, Conversation, Customer, KnowledgeArticle, Order
from crm.support.services import reply_save
from marketing_ai.ml.language.assistant import Assistant
from marketing_ai.ml.language.assistant import Order as OrderFacts
from marketing_ai.ml.language.embeddings import encoder
from marketing_ai.ml.language.llm import language_model
from marketing_ai.ml.language.retrieval import Index, passages


def _articles_signature(workspace_id: int) -> tuple:
    stats = KnowledgeArticle.objects.filter(workspace_id=workspace_id, published=True).aggregate(
        n=Count("id"), at=Max("updated_at")
    )
    return workspace_id, stats["n"], str(stats["at"])


@lru_cache(maxsize=16)
def _index(signature: tuple):
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
    model = None
    if use_model:
        model = language_model()
    return Assistant(_index(signature), encoder(), model)


def _orders(customer: Customer):
    rows = (
        Order.objects.filter(customer=customer, kind=Order.Kind.ORDER)
        .order_by("-placed_at")
        .prefetch_related("lines__product")[:20]
    )
    out = []
    for order in rows:
        lines = [f"{line.quantity} × {line.product.name}" for line in order.lines.all()]
        out.append(
            OrderFacts(
                order.external_id,
                order.placed_at.date().isoformat(),
                order.status,
                f"{order.total} {order.currency}",
                lines,
            )
        )
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
    return reply_save(message, reply)
