"""A local SMTP server that counts what it accepts (for the fault tests and bench/sends.py).

    python -m tests.smtp_sink --port 2525 --log /tmp/sink.log [--fail-rate 0.05] [--lean]

Each accepted message appends "recipient<TAB>Message-ID" to the log (flushed at once, so a
reader in another process sees it). With --fail-rate, that share of messages is refused with
451 (a transient error: the sender must try again) and nothing is logged; --fail-at says when:
at RCPT (as greylisting does) or at the end of DATA. With --throttle-domain, every recipient at
that domain is answered "421 4.7.0 Try again later, rate limited" at RCPT (and the connection
closed, as a 421 closes it) for --throttle-seconds from the first RCPT the sink sees, then
accepted. --stamp adds a third column: the time (Unix seconds) the message was accepted.

The default server is aiosmtpd. --lean serves the same protocol subset from a small asyncio
protocol with PIPELINING, about ten times cheaper per message: the benchmark uses it so that
the sink, which shares this machine's two cores with the sender, takes as little as possible
(in production the receiving MTA is on another host).
"""

import argparse
import asyncio
import random
import re
import signal
import threading
import time

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


THROTTLED = "421 4.7.0 Try again later, rate limited"


class CountingHandler:
    def __init__(
        self,
        log_path: str,
        fail_rate: float,
        seed: int,
        fail_at: str = "data",
        *,
        throttle_domain: str = "",
        throttle_seconds: float = 0.0,
        stamp: bool = False,
    ) -> None:
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115
        self.fail_rate = fail_rate
        self.fail_at = fail_at
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.throttle_suffix = "@" + throttle_domain.lower() if throttle_domain else ""
        self.throttle_seconds = throttle_seconds
        self.throttle_until: float | None = None
        self.stamp = stamp

    def _refuse(self, stage: str) -> bool:
        return stage == self.fail_at and self.fail_rate and self.random.random() < self.fail_rate

    def _throttles(self, address: str) -> bool:
        if not self.throttle_suffix:
            return False
        now = time.time()
        if self.throttle_until is None:  # the window opens with the first RCPT of all
            self.throttle_until = now + self.throttle_seconds
        return now < self.throttle_until and address.lower().endswith(self.throttle_suffix)

    def line(self, rcpt: str, message_id: str) -> str:
        return (
            f"{rcpt}\t{message_id}\t{time.time():.3f}\n"
            if self.stamp
            else f"{rcpt}\t{message_id}\n"
        )

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self._throttles(address):
            return THROTTLED
        if self._refuse("rcpt"):
            return "451 4.7.1 Greylisted, try again later"
        if address.startswith("bounce"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self._refuse("data"):
            return "451 4.3.0 Try again later"
        found = MESSAGE_ID.search(envelope.content[:4000])
        message_id = found.group(1).decode() if found else "-"
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.log.write(self.line(rcpt, message_id))
        return "250 2.0.0 OK"


class LeanSink(asyncio.Protocol):
    """Just enough ESMTP for a sender: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def __init__(self, handler: CountingHandler) -> None:
        self.handler = handler
        self.buffer = b""
        self.in_data = False
        self.scan_from = 0
        self.recipients: list[str] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while True:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):
                    end, content = 0, b""
                else:
                    end = self.buffer.find(b"\r\n.\r\n", self.scan_from)
                    if end < 0:
                        self.scan_from = max(0, len(self.buffer) - 4)
                        break
                    content, end = self.buffer[: end + 2], end + 2
                self.buffer, self.in_data, self.scan_from = self.buffer[end + 3 :], False, 0
                replies.append(self.message(content))
                continue
            newline = self.buffer.find(b"\r\n")
            if newline < 0:
                break
            line, self.buffer = self.buffer[:newline], self.buffer[newline + 2 :]
            replies.append(self.command(line))
            if replies[-1].startswith((b"221", b"421")):
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
        if replies:
            self.transport.write(b"".join(replies))

    def command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"
        if verb in (b"HELO", b"NOOP"):
            return b"250 OK\r\n"
        if verb in (b"MAIL", b"RSET"):
            self.recipients = []
            return b"250 OK\r\n"
        if verb == b"RCPT":
            address = line.split(b":", 1)[1].strip().strip(b"<>").split(b">")[0].decode()
            if self.handler._throttles(address):
                return THROTTLED.encode() + b"\r\n"
            if self.handler._refuse("rcpt"):
                return b"451 4.7.1 Greylisted, try again later\r\n"
            if address.startswith("bounce"):
                return b"550 5.1.1 No such mailbox\r\n"
            self.recipients.append(address)
            return b"250 OK\r\n"
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 No recipients\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"QUIT":
            return b"221 Bye\r\n"
        return b"502 5.5.2 Command not recognised\r\n"

    def message(self, content: bytes) -> bytes:
        recipients, self.recipients = self.recipients, []
        if self.handler._refuse("data"):
            return b"451 4.3.0 Try again later\r\n"
        found = MESSAGE_ID.search(content[:4000])
        message_id = found.group(1).decode() if found else "-"
        self.handler.log.write("".join(self.handler.line(r, message_id) for r in recipients))
        return b"250 2.0.0 OK\r\n"


def serve_lean(handler: CountingHandler, port: int, stop: threading.Event) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: LeanSink(handler), "127.0.0.1", port)
        print("ready", flush=True)
        while not stop.is_set():
            await asyncio.sleep(0.2)
        server.close()

    asyncio.run(run())


def read_log(path: str) -> list[tuple[str, ...]]:
    with open(path) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-at", choices=["rcpt", "data"], default="data")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lean", action="store_true")
    parser.add_argument("--throttle-domain", default="")
    parser.add_argument("--throttle-seconds", type=float, default=0.0)
    parser.add_argument("--stamp", action="store_true")
    args = parser.parse_args()
    handler = CountingHandler(
        args.log,
        args.fail_rate,
        args.seed,
        args.fail_at,
        throttle_domain=args.throttle_domain,
        throttle_seconds=args.throttle_seconds,
        stamp=args.stamp,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.lean:
        serve_lean(handler, args.port, stop)
        return
    controller = Controller(
        handler, hostname="127.0.0.1", port=args.port, data_size_limit=10_000_000
    )
    controller.start()
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
