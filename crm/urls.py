from django.urls import path

from crm.favicon import favicon
from crm.support import views

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("chat/<slug:workspace>/", views.chat_page, name="chat"),
    path("chat/<slug:workspace>/messages", views.chat_messages, name="chat-messages"),
    path("help/<slug:workspace>/<slug:slug>", views.help_article, name="help-article"),
]
