"""Support chat: the knowledge base the assistant answers from, conversations and their messages."""

from django.conf import settings
from django.db import models

from crm.models.customers import Customer
from crm.models.workspaces import Workspace


class KnowledgeArticle(models.Model):
    """A help article (markdown) the chat assistant answers from and cites."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="articles")
    slug = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="markdown; ## headings split it into passages")
    published = models.BooleanField(default=True, help_text="only published articles are used")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="article_unique_slug"),
        ]

    def __str__(self) -> str:
        return self.title


class Conversation(models.Model):
    """A support chat. `customer` is set only when the person was identified (signed link,
    API caller naming them); anonymous chats never see order data."""

    class Status(models.TextChoices):
        OPEN = "open"
        WAITING = "waiting", "waiting for staff"
        CLOSED = "closed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    token = models.CharField(max_length=64, unique=True, help_text="the visitor's handle")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["workspace", "status", "-updated_at"])]

    def __str__(self) -> str:
        return f"conversation {self.pk}"


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        CUSTOMER = "customer"
        ASSISTANT = "assistant"
        STAFF = "staff"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField()
    intent = models.CharField(max_length=20, blank=True)
    citations = models.JSONField(default=list, blank=True)  # [{id, slug, title}]
    refused = models.CharField(max_length=20, blank=True)
    source = models.CharField(max_length=10, blank=True)
    # The assistant's answer to this customer message is pending / done (for polling).
    answered = models.BooleanField(default=False)
    # When its reply task was last queued, and how often: the chat sweep queues an unanswered
    # message again (a worker died, the broker lost the task) and hands over to staff after
    # CHAT_REPLY_MAX_ATTEMPTS.
    reply_queued_at = models.DateTimeField(null=True, blank=True)
    reply_attempts = models.PositiveSmallIntegerField(default=0)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "id"]
        indexes = [
            # The sweep's question ("which customer messages still wait for a reply?") reads
            # only the few unanswered rows.
            models.Index(
                fields=["reply_queued_at"],
                name="crm_chat_unanswered",
                condition=models.Q(answered=False, role="customer"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
