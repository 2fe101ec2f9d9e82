"""A local SMTP server that counts what it accepts (for the fault tests and bench/sends.py).

    python -m tests.smtp_sink --port 2525 --log /tmp/sink.log [--fail-rate 0.05]

Each accepted message appends "recipient<TAB>Message-ID" to the log (flushed at once, so a
reader in another process sees it). With --fail-rate, that share of messages is refused with
451 at the end of DATA (a transient error: the sender must try again), and nothing is logged.
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
    def __init__(self, log_path: str, fail_rate: float, seed: int) -> None:
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.fail_rate and self.random.random() < self.fail_rate:
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
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    handler = CountingHandler(args.log, args.fail_rate, args.seed)
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
