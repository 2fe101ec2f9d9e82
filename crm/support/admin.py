"""Support in the admin: the knowledge base the assistant answers from, and conversations —
those waiting for a person first — with a reply box for staff."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from crm.admin.scope import WorkspaceScopedAdmin
from crm.models import ChatMessage, Conversation, KnowledgeArticle
from crm.support import services


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(WorkspaceScopedAdmin):
    list_display = ["title", "slug", "published", "updated_at"]
    list_filter = ["published"]
    search_fields = ["title", "body"]
    prepopulated_fields = {"slug": ["title"]}


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = ["created_at", "role", "text", "intent", "citations", "refused"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ConversationForm(forms.ModelForm):
    reply = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="sent to the customer in this conversation",
    )

    class Meta:
        model = Conversation
        fields = ["status"]


@admin.register(Conversation)
class ConversationAdmin(WorkspaceScopedAdmin):
    form = ConversationForm
    list_display = ["__str__", "customer", "status", "messages_count", "updated_at"]
    list_filter = ["status"]
    readonly_fields = ["customer", "created_at"]
    inlines = [ChatMessageInline]
    raw_id_fields = ["customer"]

    def get_queryset(self, request):
        # Waiting for staff first, then the most recent.
        return (
            super()
            .get_queryset(request)
            .select_related("customer")
            .annotate(message_count=Count("messages"))
            .order_by("-status", "-updated_at")
        )

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="messages", ordering="message_count")
    def messages_count(self, conversation: Conversation) -> int:
        return conversation.message_count

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        text = form.cleaned_data.get("reply", "").strip()
        if text:
            services.staff_reply(conversation=obj, user=request.user, text=text)
            messages.success(request, "Reply sent.")
