"""Chat API for integrators (scope `chat`): post a customer's message, get the assistant's
reply with its citations; read a conversation. A caller that names a customer (`customer`:
id, ext:<source>:<id> or email:<address>) gets answers about that customer's orders only."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from crm import selectors
from crm.api.base import WorkspaceApi
from crm.models import Conversation
from crm.services import support


class ChatRequest(serializers.Serializer):
    message = serializers.CharField(max_length=support.MAX_TEXT)
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


class ChatReplyOut(serializers.Serializer):
    conversation = serializers.CharField()
    status = serializers.CharField()
    reply = ChatMessageOut(allow_null=True)


def _reply_body(message, reply) -> dict:
    conversation = message.conversation
    conversation.refresh_from_db(fields=["status"])
    shaped = None
    if reply is not None:
        shaped = {k: getattr(reply, k) for k in ("id", "role", "text", "intent", "citations",
                                                 "refused", "created_at")}  # fmt: skip
    return {"conversation": conversation.token, "status": conversation.status, "reply": shaped}


class ChatApi(WorkspaceApi):
    read_scope = write_scope = "chat"

    @extend_schema(request=ChatRequest, responses={200: ChatReplyOut, 202: ChatReplyOut})
    def post(self, request):
        """200 with the reply; 202 when the worker has not answered within CHAT_WAIT_SECONDS
        (read the conversation later) or when staff hold the conversation."""
        data = ChatRequest(data=request.data)
        data.is_valid(raise_exception=True)
        ref = (data.validated_data.get("customer") or "").strip()
        customer = selectors.customer_get(workspace=self.workspace, ref=ref) if ref else None
        try:
            message = support.chat_post(
                workspace=self.workspace, text=data.validated_data["message"],
                conversation=data.validated_data.get("conversation") or "", customer=customer,
            )  # fmt: skip
        except support.ChatError as exc:
            raise ValidationError(exc.errors) from exc
        reply = support.chat_wait(message, settings.CHAT_WAIT_SECONDS)
        code = status.HTTP_200_OK if reply is not None else status.HTTP_202_ACCEPTED
        return Response(_reply_body(message, reply), status=code)


class ChatConversationApi(WorkspaceApi):
    read_scope = write_scope = "chat"

    @extend_schema(responses=ChatMessageOut(many=True))
    def get(self, request, token):
        conversation = get_object_or_404(Conversation, workspace=self.workspace, token=token)
        return Response({"conversation": token, "status": conversation.status,
                         "messages": support.conversation_messages(conversation)})  # fmt: skip
