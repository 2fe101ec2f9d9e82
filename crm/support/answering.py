"""The assistant's turn: the workspace's knowledge index and assistant (kept per process until
an article changes), and the reply to one customer message. Runs on a `gpu` worker, where the
language model is loaded once; this module loads numpy and the language models' code, so only
the reply task imports it.

A customer's orders reach the assistant only through `conversation.customer`, which is set
when the person was identified (a signed link from our e-mails, or an API caller that names
them); whatever a message says, no other customer's rows are read. The catalogue it answers
product questions from is the conversation's workspace's own products.
"""

import logging
from functools import lru_cache

from django.conf import settings
from django.db.models import Count, Max

from crm.models import ChatMessage, Conversation, Customer, KnowledgeArticle, Order, OrderLine
from crm.models import Product as CatalogueRow
from crm.support.partials import partial_clear, partial_write
from crm.support.services import reply_save
from marketing_ai.ml.language.assistant import Assistant, Catalogue, Line, Product
from marketing_ai.ml.language.assistant import Order as OrderFacts
from marketing_ai.ml.language.embeddings import encoder
from marketing_ai.ml.language.llm import language_model
from marketing_ai.ml.language.packaged import ModelUnavailable
from marketing_ai.ml.language.retrieval import Index, passages

log = logging.getLogger(__name__)
# The category the importers give charges and adjustments (crm.importers.online_retail).
NON_MERCHANDISE = "non-merchandise"


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
    signature = _articles_signature(workspace_id)
    try:
        return _assistant(signature, use_model)
    except ModelUnavailable as exc:
        # The articles' own sentences answer while the model server is down; the failure is
        # not cached, so the next turn asks the server again.
        log.warning("chat answers without the language model: %s", exc)
        return _assistant(signature, False)


@lru_cache(maxsize=16)
def _assistant(signature: tuple, use_model: bool):
    model = None
    if use_model:
        model = language_model()
    return Assistant(_index(signature), encoder(), model)


# A customer's whole history is read (questions by date and product reach back years), in two
# queries of plain values; a cap keeps a wholesale account's turn bounded.
MAX_ORDERS = 1000


def _orders(customer: Customer) -> list[OrderFacts]:
    """The customer's orders and returns, most recent first, with their lines."""
    rows = list(
        Order.objects.filter(customer=customer)
        .order_by("-placed_at", "-pk")
        .values_list("pk", "external_id", "kind", "status", "placed_at", "cancelled_at", "total",
                     "currency")[:MAX_ORDERS]
    )  # fmt: skip
    lines: dict[int, list[Line]] = {pk: [] for pk, *_ in rows}
    for order_id, quantity, name in (
        OrderLine.objects.filter(order_id__in=lines)
        .order_by("pk")
        .values_list("order_id", "quantity", "product__name")
    ):
        lines[order_id].append(Line(quantity, name))
    return [
        OrderFacts(
            number,
            placed_at.date().isoformat(),
            status,
            f"{total} {currency}",
            lines[pk],
            kind=kind,
            cancelled_at=cancelled_at.date().isoformat() if cancelled_at else "",
        )
        for pk, number, kind, status, placed_at, cancelled_at, total, currency in rows
    ]


def _catalogue_signature(workspace_id: int) -> tuple:
    stats = CatalogueRow.objects.filter(workspace_id=workspace_id).aggregate(
        n=Count("id"), at=Max("updated_at")
    )
    return workspace_id, stats["n"], str(stats["at"])


@lru_cache(maxsize=16)
def _catalogue(signature: tuple) -> Catalogue:
    # Charges, fees and adjustments (postage, bad debt, marketplace fees) are rows of the
    # catalogue, not products a customer asks about.
    rows = (
        CatalogueRow.objects.filter(workspace_id=signature[0])
        .exclude(category=NON_MERCHANDISE)
        .values_list("sku", "name", "price", "currency", "description", "category", "active")
    )
    return Catalogue(
        [
            Product(sku, name, str(price) if price is not None else None, currency, desc, cat, on)
            for sku, name, price, currency, desc, cat, on in rows
        ]
    )


def catalogue(workspace_id: int) -> Catalogue:
    """The workspace's products prepared for lookups, kept per process until one changes."""
    return _catalogue(_catalogue_signature(workspace_id))


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
    no automatic reply. The model's answer is kept as it is written (crm.support.partials), for
    the widget to show before the reply is saved."""
    facts = _turn_facts(message_id)
    if facts is None:
        return None
    message, orders = facts
    conversation = message.conversation
    if conversation.status == Conversation.Status.WAITING:
        ChatMessage.objects.filter(pk=message.pk, answered=False).update(answered=True)
        return None
    bot = assistant(conversation.workspace_id, with_model=with_model)
    attempt = message.reply_attempts
    try:
        reply = bot.reply(
            message.text,
            orders=orders,
            identified=orders is not None,
            catalogue=catalogue(conversation.workspace_id),
            on_text=lambda text: partial_write(message.pk, attempt, text),
        )
        return reply_save(message, reply)
    finally:
        partial_clear(message.pk, attempt)
