"""A real Dovecot (Debian's dovecot-imapd and dovecot-pop3d) run from a config of its own in a
temporary directory, on free ports, plain text on 127.0.0.1: one user whose INBOX the bounce
mailbox tests and bench/deliverability.py --latency fill over IMAP APPEND."""

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "pw-for-tests"

CONFIG = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = test-{imap}
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


class Dovecot:
    def __init__(self) -> None:
        # Short: Dovecot's sockets live under base_dir (a Unix socket path has ~100 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="dv", dir="/tmp"))
        self.dir.chmod(0o755)  # its auth process (another user, as root) reads the passwd file
        self.imap, self.pop3 = _free_port(), _free_port()
        root = os.getuid() == 0
        # As root its login and mail processes run as the package's users (mail never as root);
        # as anyone else, all as that user.
        me = os.environ.get("USER") or str(os.getuid())
        (self.dir / "home").mkdir(mode=0o777)
        (self.dir / "home").chmod(0o777)
        (self.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (self.dir / "dovecot.conf").write_text(
            CONFIG.format(
                d=self.dir,
                imap=self.imap,
                pop3=self.pop3,
                internal="dovecot" if root else me,
                login="dovenull" if root else me,
                uid=65534 if root else os.getuid(),
                gid=65534 if root else os.getgid(),
            )
        )
        subprocess.run([DOVECOT, "-c", str(self.dir / "dovecot.conf")], check=True)
        _wait(self._answers)

    def _answers(self) -> bool:
        try:
            imaplib.IMAP4("127.0.0.1", self.imap).logout()
            return True
        except OSError:
            return False

    def put(self, *messages: bytes) -> None:
        client = imaplib.IMAP4("127.0.0.1", self.imap)
        client.login(USER, PASSWORD)
        for raw in messages:
            client.append("INBOX", None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        client.logout()

    def count(self) -> int:
        client = imaplib.IMAP4("127.0.0.1", self.imap)
        client.login(USER, PASSWORD)
        _, data = client.select("INBOX")
        client.logout()
        return int(data[0])

    def stop(self) -> None:
        pid = (self.dir / "run" / "master.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False)
        _wait(lambda: not (self.dir / "run" / "master.pid").exists())
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("Dovecot did not start or stop")
        time.sleep(0.05)
