"""Deliverability: DKIM signing of the mail our SMTP path sends (signing, keys per sending
domain), a signed VERP return path per message (verp), and the reading of the bounce and
complaint reports that come back to it (parse)."""
