"""Reads of support conversations: who may read one, whether a reply is pending (and which),
its messages, and a person's conversations for their privacy export and timeline."""

from django.db.models import Count

from crm.models import ChatMessage, Conversation, Customer


def conversation_readable(conversation: Conversation, customer: Customer | None) -> bool:
    """Whether someone holding the conversation's token (and `customer`, from a signed link, or
    None) may read it: an anonymous chat by its token alone, an identified one only with a link
    that names its customer (so a leaked token does not show the customer's orders)."""
    return conversation.customer_id is None or (
        customer is not None and customer.pk == conversation.customer_id
    )


def conversation_pending(conversation: Conversation) -> bool:
    """Whether a customer message of `conversation` still waits for the assistant."""
    return conversation.messages.filter(role=ChatMessage.Role.CUSTOMER, answered=False).exists()


def conversation_unanswered(conversation: Conversation) -> list[tuple[int, int]]:
    """(id, reply attempt) of each customer message of `conversation` still waiting for the
    assistant, oldest first: the attempt names the turn whose partial text may be shown."""
    return list(
        conversation.messages.filter(role=ChatMessage.Role.CUSTOMER, answered=False)
        .order_by("pk")
        .values_list("pk", "reply_attempts")
    )


def conversation_messages(conversation: Conversation) -> list[dict]:
    return list(
        conversation.messages.order_by("pk").values(
            "id", "role", "text", "intent", "citations", "refused", "created_at"
        )
    )


def conversations_export(customer: Customer) -> list[dict]:
    # The id, not the token: the token is the visitor's handle, not something to hand around.
    return [
        {
            "id": c.pk,
            "status": c.status,
            "created_at": c.created_at,
            "messages": conversation_messages(c),
        }
        for c in Conversation.objects.filter(customer=customer).order_by("pk")
    ]


def conversations_timeline(customer: Customer, limit: int) -> list[dict]:
    rows = (
        Conversation.objects.filter(customer=customer)
        .annotate(message_count=Count("messages"))
        .order_by("-created_at")[:limit]
    )
    return [
        {
            "at": c.created_at,
            "kind": "conversation",
            "id": c.pk,
            "status": c.status,
            "messages": c.message_count,
        }
        for c in rows
    ]
