"""A local SMTP server that counts what it accepts (for the fault tests and bench/sends.py).

    python -m tests.smtp_sink --port 2525 --log /tmp/sink.log [--fail-rate 0.05]

Each accepted message appends "recipient<TAB>Message-ID" to the log (flushed at once, so a
reader in another process sees it). With --fail-rate, that share of messages is refused with
451 (a transient error: the sender must try again) and nothing is logged; --fail-at says when:
at RCPT (as greylisting does) or at the end of DATA.
"""

import argparse
import asyncio
import random
import re
import signal
import threading

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self, log_path: str, fail_rate: float, seed: int, fail_at: str = "data") -> None:
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115
        self.fail_rate = fail_rate
        self.fail_at = fail_at
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def _refuse(self, stage: str) -> bool:
        return stage == self.fail_at and self.fail_rate and self.random.random() < self.fail_rate

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
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
                self.log.write(f"{rcpt}\t{message_id}\n")
        return "250 2.0.0 OK"


def read_log(path: str) -> list[tuple[str, str]]:
    with open(path) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-at", choices=["rcpt", "data"], default="data")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    handler = CountingHandler(args.log, args.fail_rate, args.seed, args.fail_at)
    controller = Controller(handler, hostname="127.0.0.1", port=args.port,
                            data_size_limit=10_000_000)  # fmt: skip
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
