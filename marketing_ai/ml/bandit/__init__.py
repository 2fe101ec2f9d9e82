"""Bandits: which variant to send, learned while sending, with every choice's probability logged
so that any other policy can be judged on the logs (issue 17). No Django here."""
