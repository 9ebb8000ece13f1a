"""A throwaway real Dovecot 2.3 IMAP server for integration tests."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import grp
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl as ssl_module
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from imapclient import IMAPClient, imap_utf7

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")
_BIN_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/sbin")
_SPECIAL_USE = {
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Drafts": "\\Drafts",
    "Archive": "\\Archive",
}
_MAILDIR_FLAGS = frozenset("DFPRST")
_PASSWORD_MECHANISMS = "plain login"
_START_TIMEOUT = 10.0


def find_dovecot() -> str | None:
    """Return the path of the ``dovecot`` binary, or None when it is not installed."""
    return _find_binary("dovecot", _SBIN_DIRS)


def _find_binary(name: str, extra_dirs: Iterable[str]) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _free_ports(count: int) -> list[int]:
    # Keep all sockets open until every port is picked so we never get the same one twice.
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_self_signed_cert(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # CA:TRUE so the certificate can be used directly as the trust anchor by clients.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


class DovecotServer:
    """A real Dovecot IMAP server living entirely inside a temporary directory."""

    host = "127.0.0.1"

    def __init__(
        self,
        root: Path | str | None = None,
        binary: str | None = None,
        tls: bool = True,
        *,
        capabilities: str = "",
        prefix: str = "",
        separator: str = "/",
        extra_config: str = "",
        oauth2_introspection_url: str = "",
        oauth2_mechanisms: str = "xoauth2 oauthbearer",
    ) -> None:
        """Prepare (but do not start) a server; ``root`` defaults to a fresh temp dir.

        ``tls=False``: no TLS at all, so no STARTTLS in CAPABILITY and no ``ssl_port`` (0).
        ``capabilities``: the CAPABILITY list to announce instead of Dovecot's (``imap_capability``),
        to look like a server without CONDSTORE, QRESYNC, MOVE... ``prefix``/``separator``: the
        namespace, e.g. ``"INBOX."`` and ``"."`` as on Courier (the folder helpers below assume the
        default; use IMAP for other folders then). ``extra_config``: more configuration appended to
        the rendered one (raised limits for many connections, say). ``oauth2_introspection_url``: also
        accept bearer tokens (``oauth2_mechanisms``), checked by an oauth2 passdb that POSTs them to this
        RFC 7662 endpoint; client credentials go into the URL (``http://id:secret@host:port/...``), which
        Dovecot sends as HTTP Basic. Users must still be added (``add_user``) and passwords keep working.
        """
        self.tls = tls
        self.capabilities = capabilities
        self.prefix = prefix
        self.separator = separator
        self.extra_config = extra_config
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_mechanisms = oauth2_mechanisms
        self._given_root = Path(root) if root is not None else None
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._doveadm_bin = ""
        self._console_path = Path()
        self._lock = threading.Lock()
        self._stamp_us = 0
        self._counter = 0
        self._hostname = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self._hostname = self._hostname.replace(",", "_") or "localhost"
        self.root = Path()
        self.port = 0
        self.ssl_port = 0
        self.config_path = Path()
        self.ca_cert_path = Path()
        self.log_path = Path()
        self.passwd_dir = Path()
        self.mail_uid = os.getuid()
        self.mail_gid = os.getgid()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Write the config, launch ``dovecot -F`` and wait until it greets on ``port``."""
        if self._proc is not None:
            raise RuntimeError("Dovecot server already started")
        binary = self._binary or find_dovecot()
        if binary is None:
            raise RuntimeError("dovecot binary not found")
        doveadm = _find_binary("doveadm", [str(Path(binary).parent), *_BIN_DIRS])
        if doveadm is None:
            raise RuntimeError("doveadm binary not found")
        self._doveadm_bin = doveadm

        if self._given_root is not None:
            self.root = self._given_root
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            # Short path: unix sockets live below it (108-byte limit), and $TMPDIR may be
            # private to us while Dovecot's unprivileged processes must traverse the tree.
            tmp_parent = "/tmp" if os.path.isdir("/tmp") else None
            self.root = Path(tempfile.mkdtemp(prefix="dovecot-", dir=tmp_parent))
        self.root.chmod(0o755)
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(exist_ok=True)

        self._choose_users()
        self.port, self.ssl_port = _free_ports(2)
        if not self.tls:
            self.ssl_port = 0
        self.ca_cert_path = self.root / "cert.pem"
        _write_self_signed_cert(self.ca_cert_path, self.root / "key.pem")
        self.passwd_dir = self.root / "passwd.d"
        self.passwd_dir.mkdir(mode=0o755, exist_ok=True)
        self.log_path = self.root / "dovecot.log"
        self.config_path = self.root / "dovecot.conf"
        self.config_path.write_text(self._render_config())
        if self.oauth2_introspection_url:
            self._oauth2_config_path.write_text(self._render_oauth2_config())

        self._console_path = self.root / "console.log"
        self._launch(binary)

    def _launch(self, binary: str) -> None:
        """Run ``dovecot -F`` on the written config and wait for its greeting."""
        self._binary = binary
        with open(self._console_path, "ab") as console:
            self._proc = subprocess.Popen(
                [binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        try:
            self._wait_for_greeting()
        except Exception:
            self.stop(cleanup=False)
            raise

    def restart(self, pause: float = 0.0) -> None:
        """Stop the server (every connection drops) and start it again on the same ports and mail."""
        binary = self._binary or find_dovecot() or "dovecot"
        self._kill()
        time.sleep(pause)
        self._launch(binary)

    def stop(self, cleanup: bool = True) -> None:
        """Kill the server's process group and remove the temp dir if we created it."""
        atexit.unregister(self.stop)
        self._kill()
        if cleanup and self._given_root is None and self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill(self) -> None:
        """End the server's process group."""
        proc, self._proc = self._proc, None
        if proc is not None:
            # SIGTERM to the master alone lets it shut its children down cleanly; the
            # group-wide SIGKILL then catches anything that survived.
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> DovecotServer:
        """Start the server and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server and clean up."""
        self.stop()

    def _choose_users(self) -> None:
        if os.geteuid() == 0:
            # Dovecot refuses to access mail as root, and its system users must exist.
            self._internal_user = self._first_existing_user("dovecot", "nobody")
            self._login_user = self._first_existing_user("dovenull", "nobody")
            mail = pwd.getpwnam(self._first_existing_user("nobody", "dovecot"))
            self.mail_uid, self.mail_gid = mail.pw_uid, mail.pw_gid
        else:
            # Rootless mode: everything runs as the invoking user.
            self._internal_user = self._login_user = pwd.getpwuid(os.getuid()).pw_name
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
        self._internal_group = grp.getgrgid(pwd.getpwnam(self._internal_user).pw_gid).gr_name

    @staticmethod
    def _first_existing_user(*names: str) -> str:
        for name in names:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return name
        raise RuntimeError(f"none of the system users {names} exist")

    def _render_config(self) -> str:
        root = self.root
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}"
            for name, flag in _SPECIAL_USE.items()
        )
        return f"""\
# Generated by tests/support/dovecot.py; complete on purpose (no system conf.d).
protocols = imap
listen = {self.host}
base_dir = {root}/run
state_dir = {root}/state
instance_name = dovecot-test-{secrets.token_hex(4)}
log_path = {self.log_path}
info_log_path = {self.log_path}
auth_verbose = yes

default_internal_user = {self._internal_user}
default_internal_group = {self._internal_group}
default_login_user = {self._login_user}
first_valid_uid = {min(self.mail_uid, 500) or 1}
last_valid_uid = 0
first_valid_gid = 1
last_valid_gid = 0

{self._ssl_config()}
disable_plaintext_auth = no
auth_mechanisms = {self._auth_mechanisms()}
# A user added after start must be able to log in at once.
auth_cache_size = 0
# Failed logins in one test must not slow down the others (no delay, no IP penalty).
auth_failure_delay = 0

mail_location = maildir:~/Maildir
mail_fsync = never

passdb {{
  driver = passwd-file
{self._passwd_mechanisms()}  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
{self._oauth2_passdb()}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}

namespace inbox {{
  inbox = yes
  separator = {self.separator}
  prefix = {self.prefix}
{mailboxes}
}}
{f"imap_capability = {self.capabilities}" if self.capabilities else ""}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
{self._imaps_listener()}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{self.extra_config}
"""

    @property
    def _oauth2_config_path(self) -> Path:
        return self.root / "dovecot-oauth2.conf.ext"

    def _auth_mechanisms(self) -> str:
        if not self.oauth2_introspection_url:
            return _PASSWORD_MECHANISMS
        return f"{_PASSWORD_MECHANISMS} {self.oauth2_mechanisms}"

    def _passwd_mechanisms(self) -> str:
        if not self.oauth2_introspection_url:
            return ""
        # Else the passwd-file passdb would compare a bearer token with the password: the password would
        # then log in as an XOAUTH2 "token".
        return f"  mechanisms = {_PASSWORD_MECHANISMS}\n"

    def _oauth2_passdb(self) -> str:
        if not self.oauth2_introspection_url:
            return ""
        return (
            f"passdb {{\n  driver = oauth2\n  mechanisms = {self.oauth2_mechanisms}\n"
            f"  args = {self._oauth2_config_path}\n}}"
        )

    def _render_oauth2_config(self) -> str:
        # No tokeninfo_url: every login is one introspection request (token=...&client_id=&client_secret=,
        # as a form POST); force_introspection because active_attribute is only in that answer.
        return f"""\
introspection_mode = post
introspection_url = {self.oauth2_introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""

    def _ssl_config(self) -> str:
        if not self.tls:
            return "ssl = no"
        return f"ssl = yes\nssl_cert = <{self.ca_cert_path}\nssl_key = <{self.root}/key.pem"

    def _imaps_listener(self) -> str:
        if not self.tls:
            return ""
        return (
            f"  inet_listener imaps {{\n    address = {self.host}\n    port = {self.ssl_port}\n"
            "    ssl = yes\n  }"
        )

    def _wait_for_greeting(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with status {self._proc.returncode} (root {self.root})\n"
                    f"{self._log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    greeting = sock.recv(200)
                if greeting.startswith(b"* OK"):
                    return
                last_error = RuntimeError(f"unexpected greeting {greeting!r}")
            except OSError as exc:
                last_error = exc
            time.sleep(0.05)
        raise RuntimeError(
            f"dovecot did not greet on port {self.port} within {_START_TIMEOUT} s "
            f"({last_error})\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self._console_path, self.log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- users and folders -------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str = "secret") -> str:
        """Add a passwd-file user (random unique name when None) and return its name."""
        if name is None:
            name = f"user-{secrets.token_hex(6)}"
        for value in (name, password):
            if not value or any(ch in value for ch in ":\n\r\0"):
                raise ValueError(f"unsupported user name or password: {value!r}")
        if "/" in name or name.startswith("."):
            raise ValueError(f"unsupported user name: {name!r}")
        home = self.home(name)
        maildir = home / "Maildir"
        for directory in (home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
            directory.mkdir(mode=0o700)
            self._chown(directory)
        line = f"{name}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}::\n"
        # One passwd-file per user: Dovecot re-checks a known passwd-file at most once per
        # second, so a shared file could hide a just-added user, while a new path is read
        # on first use. Write + rename so auth never sees a half-written file.
        tmp = self.passwd_dir / f".{name}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)
        os.replace(tmp, self.passwd_dir / name)
        return name

    def home(self, user: str) -> Path:
        """Return the home directory of ``user``."""
        return self.root / "home" / user

    def maildir_path(self, user: str, folder: str) -> Path:
        """Return the Maildir++ directory of ``folder`` (UTF-8 name, "/" separated)."""
        base = self.home(user) / "Maildir"
        if folder.upper() == "INBOX":
            return base
        parts = folder.split("/")
        if any(not part or "." in part for part in parts):
            raise ValueError(f"folder name not representable in Maildir++: {folder!r}")
        return base / ("." + ".".join(imap_utf7.encode(part).decode("ascii") for part in parts))

    def create_folder(self, user: str, name: str) -> None:
        """Create and subscribe folder ``name``; already existing folders are fine."""
        if name.upper() == "INBOX":
            return
        if not (self.maildir_path(user, name) / "cur").is_dir():
            try:
                self.doveadm("mailbox", "create", "-u", user, name)
            except RuntimeError as exc:
                if "already exists" not in str(exc).lower():
                    raise
        self.doveadm("mailbox", "subscribe", "-u", user, name)

    def delete_folder(self, user: str, name: str, recursive: bool = False) -> None:
        """Delete (and unsubscribe) folder ``name`` including its messages."""
        args = ["mailbox", "delete", "-s", "-u", user]
        if recursive:
            args.append("-r")
        self.doveadm(*args, name)

    def set_uidvalidity(self, user: str, folder: str, value: int) -> None:
        """Set the UIDVALIDITY of ``folder``."""
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(value), folder)

    # -- messages ----------------------------------------------------------------------------

    def add_message(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: str = "",
        internaldate: dt.datetime | None = None,
    ) -> None:
        """Write ``raw`` into the folder's Maildir (flags: Maildir letters such as "SF")."""
        self.add_messages(user, folder, [raw], flags=flags, internaldate=internaldate)

    def add_messages(
        self,
        user: str,
        folder: str,
        raws: Iterable[bytes],
        flags: str = "",
        internaldate: dt.datetime | None = None,
    ) -> None:
        """Deliver many messages quickly; UIDs follow the iteration order."""
        letters = "".join(sorted(set(flags)))
        if not set(letters) <= _MAILDIR_FLAGS:
            raise ValueError(f"flags must be Maildir letters from 'DFPRST', got {flags!r}")
        directory = self.maildir_path(user, folder)
        if not (directory / "cur").is_dir():
            self.create_folder(user, folder)
        # Dovecot reports a Maildir file's mtime as INTERNALDATE (naive datetimes = local time).
        mtime = internaldate.timestamp() if internaldate is not None else None
        tmp_dir, cur_dir = directory / "tmp", directory / "cur"
        for raw in raws:
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
            # S= (file size) and W= (size with CRLF line endings, i.e. RFC822.SIZE) spare
            # Dovecot from reading the file just to learn its sizes.
            vsize = len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
            name = f"{self._unique_base()},S={len(raw)},W={vsize}:2,{letters}"
            tmp_path = tmp_dir / name
            with open(tmp_path, "wb") as fh:
                fh.write(raw)
            self._chown(tmp_path)
            if mtime is not None:
                os.utime(tmp_path, (mtime, mtime))
            os.rename(tmp_path, cur_dir / name)

    def _unique_base(self) -> str:
        # Dovecot assigns UIDs to new files sorted by the seconds and M<usec> parts of the
        # name, so strictly increasing timestamps keep UID order equal to delivery order.
        with self._lock:
            stamp = max(time.time_ns() // 1000, self._stamp_us + 1)
            self._stamp_us = stamp
            self._counter += 1
            counter = self._counter
        seconds, micros = divmod(stamp, 1_000_000)
        return f"{seconds}.M{micros}P{os.getpid()}Q{counter}.{self._hostname}"

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    # -- tools and clients -------------------------------------------------------------------

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c CONF *args`` and return its stdout (RuntimeError on failure)."""
        result = subprocess.run(
            [self._doveadm_bin, "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def ssl_context(self) -> ssl_module.SSLContext:
        """Return a client SSL context that trusts this server's self-signed certificate."""
        return ssl_module.create_default_context(cafile=str(self.ca_cert_path))

    def client(self, user: str, password: str = "secret", ssl: bool = False) -> IMAPClient:
        """Return an IMAPClient logged in as ``user`` (implicit TLS on ``ssl_port`` if ``ssl``)."""
        if ssl:
            client = IMAPClient(
                self.host, self.ssl_port, ssl=True, ssl_context=self.ssl_context(), timeout=30
            )
        else:
            client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        try:
            client.login(user, password)
        except Exception:
            client.shutdown()
            raise
        return client
