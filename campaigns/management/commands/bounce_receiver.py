"""`python manage.py bounce_receiver [--host 127.0.0.1] [--port 2424]`: the LMTP server that
records the bounce and complaint reports addressed to the bounce domains
(campaigns.deliverability.receiver), until stopped (SIGTERM, Ctrl-C)."""

import signal
import threading

from django.core.management.base import BaseCommand

from campaigns.deliverability.receiver import receiver


class Command(BaseCommand):
    help = "Serve the bounce receiver (LMTP) that records bounce and complaint reports."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2424)

    def handle(self, *args, host: str, port: int, **options) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        server = receiver(host=host, port=port)
        server.start()
        self.stdout.write(f"bounce receiver (LMTP) on {host}:{port}")
        stop.wait()
        server.stop()
