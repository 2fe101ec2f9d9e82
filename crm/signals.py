"""Signals the CRM sends for other parts (its own and other apps) to act on."""

from django.dispatch import Signal

# Sent inside the erasure's transaction with `customer` and `counts`: apps that keep personal
# data of their own (sent messages, chat conversations, cached answers) remove it in a
# receiver, so erasure reaches them too.
customer_erased = Signal()

# Sent after events were recorded for `workspace_id` (the API's and bulk writes, orders), inside
# their transaction: automation that reads crm.EventOutbox can be nudged to read it at once.
events_recorded = Signal()

# Sent inside a chat turn's short final transaction when a customer asks for a person: the
# campaigns app turns it into a `conversation.waiting` webhook, so a helpdesk outside can pick
# it up too.
conversation_waiting = Signal()
