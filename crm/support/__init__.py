"""Support chat: conversations with an assistant that answers from the workspace's knowledge
base and the customer's own orders, handed to staff when it cannot."""
