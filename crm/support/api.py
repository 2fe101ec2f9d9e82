"""Chat API for integrators (scope `chat`): post a customer's message (202 at once: a worker
writes the reply), then read the conversation for the assistant's reply with its citations
(`pending` is true until it is there, and `partials` carries the model's answer so far). A
caller that names a customer (`customer`: id, ext:<source>:<id> or email:<address>) gets
answers about that customer's orders only."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from crm import selectors
from crm.api.base import WorkspaceApi
from crm.models import Conversation
from crm.support import partials
from crm.support import selectors as conversations
from crm.support import services as chat


class ChatRequest(serializers.Serializer):
    message = serializers.CharField(max_length=chat.MAX_TEXT)
    conversation = serializers.CharField(required=False, allow_blank=True, max_length=64)
    customer = serializers.CharField(required=False, allow_blank=True, max_length=300)


class ChatMessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    text = serializers.CharField()
    intent = serializers.CharField()
    citations = serializers.ListField(child=serializers.DictField())
    refused = serializers.CharField()
    created_at = serializers.DateTimeField()


class ChatPostedOut(serializers.Serializer):
    conversation = serializers.CharField()
    status = serializers.CharField()
    message = serializers.IntegerField(help_text="the stored message; its reply follows it")


class ChatPartialOut(serializers.Serializer):
    message = serializers.IntegerField(help_text="the customer message being answered")
    text = serializers.CharField(help_text="the answer so far; the reply replaces it")


class ChatConversationOut(serializers.Serializer):
    conversation = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.CharField()
    pending = serializers.BooleanField(help_text="a reply is still being written")
    messages = ChatMessageOut(many=True)
    partials = ChatPartialOut(many=True, help_text="answers as the model writes them")


class ChatApi(WorkspaceApi):
    read_scope = write_scope = "chat"

    @extend_schema(request=ChatRequest, responses={202: ChatPostedOut})
    def post(self, request):
        """202 at once: the message is stored and its reply queued; read the conversation
        (GET /chat/<conversation>) for it. No reply comes while staff hold the conversation."""
        data = ChatRequest(data=request.data)
        data.is_valid(raise_exception=True)
        ref = (data.validated_data.get("customer") or "").strip()
        customer = selectors.customer_get(workspace=self.workspace, ref=ref) if ref else None
        try:
            message = chat.chat_post(
                workspace=self.workspace,
                text=data.validated_data["message"],
                conversation=data.validated_data.get("conversation") or "",
                customer=customer,
                speaks_for_customer=True,  # the key vouches for this workspace's customers
            )
        except chat.ChatError as exc:
            raise ValidationError(exc.errors) from exc
        conversation = message.conversation
        body = {
            "conversation": conversation.token,
            "status": conversation.status,
            "message": message.pk,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ChatConversationApi(WorkspaceApi):
    read_scope = write_scope = "chat"

    @extend_schema(responses=ChatConversationOut)
    def get(self, request, token: str = "", pk: int | None = None):
        """By the token a POST answered, or by the id a `conversation.waiting` webhook names."""
        found = {"token": token} if pk is None else {"pk": pk}
        conversation = get_object_or_404(Conversation, workspace=self.workspace, **found)
        unanswered = conversations.conversation_unanswered(conversation)  # before the messages
        messages = conversations.conversation_messages(conversation)
        replies = [m["id"] for m in messages if m["role"] != "customer"]
        return Response(
            {
                "conversation": conversation.token,
                "id": conversation.pk,
                "status": conversation.status,
                "pending": bool(unanswered),
                "messages": messages,
                "partials": partials.partials_shown(unanswered, max(replies, default=0)),
            }
        )
