"""Downloads: an attachment, or the original message, fetched from IMAP as the caller reads it.

A download opens a connection of its own, EXAMINEs the folder (read-only: nothing changes, and
``BODY.PEEK`` never sets ``\\Seen``) and takes no sync lease, so a slow reader holds nobody up.
The first chunk is fetched before the answer starts, so a message gone from the server is a 404,
not a broken stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from imapclient import IMAPClient
from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import emails as crud_emails
from imap2api.db import session_scope
from imap2api.errors import NotFound
from imap2api.mail import parse_message
from imap2api.models import Attachment, Email, ImapServer
from imap2api.services.principal import Principal
from imap2api.sync.connection import open_connection
from imap2api.sync.content import decoded, fetch_chunks
from imap2api.sync.engine import account_of

_UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\]')
# A download is a file, never a page of this site: an HTML attachment opened inline runs nothing here.
SANDBOX_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, max-age=0, must-revalidate",
}


@dataclass
class Download:
    """What a download answers: headers, and the bytes as an iterator (first chunk already fetched)."""

    filename: str
    content_type: str
    etag: str
    chunks: Iterator[bytes]

    def close(self) -> None:
        """End the download, read or not: its IMAP connection goes (safe to call twice, from any thread)."""
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def disposition(filename: str, *, inline: bool) -> str:
    """``Content-Disposition`` with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 5987)."""
    kind = "inline" if inline else "attachment"
    fallback = _UNSAFE_IN_QUOTES.sub("_", filename)[:200] or "download"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename[:200], safe='')}"


def file_headers(download: Download, *, inline: bool, body: bool = True) -> dict[str, str]:
    """The headers every download is served with (the REST routes and the admin's alike)."""
    headers = {**SANDBOX_HEADERS, "ETag": download.etag}
    if body:
        headers["Content-Disposition"] = disposition(download.filename, inline=inline)
    return headers


@dataclass(frozen=True)
class _Place:
    """Where a message is on its server."""

    server: ImapServer
    folder: str
    uidvalidity: int
    uid: int


def _place(session: Session, actor: Principal, email_id: int) -> tuple[Email, _Place]:
    """One of the principal's emails, and where it lives."""
    email = session.get(Email, email_id)
    if email is None or not actor.may_act_for(email.owner_id):
        raise NotFound()
    server = session.get(ImapServer, email.imap_server_id)
    if server is None:
        raise NotFound()
    return email, _Place(server, email.folder, email.uidvalidity, email.uid)


def _opened(place: _Place) -> IMAPClient:
    """A connection with the message's folder EXAMINEd; NotFound if that folder generation is gone."""
    client = open_connection(account_of(place.server))
    try:
        info = client.select_folder(place.folder, readonly=True)
        if int(info.get(b"UIDVALIDITY", 0) or 0) != place.uidvalidity:
            raise NotFound()
    except Exception:
        client.shutdown()
        raise
    return client


class _Stream:
    """The chunks of a download, fetched on demand, ending its IMAP connection once: when read to
    the end, or when ``close`` is called (the reader left), even while a chunk is being fetched."""

    def __init__(self, client: IMAPClient, chunks: Iterator[bytes]) -> None:
        self.client = client
        self.chunks = chunks
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._ended = False
        try:
            self.first: bytes | None = next(chunks, b"")  # a missing message raises here, before any answer
        except Exception:
            self._end()
            raise

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        try:
            piece = None if self.stopped.is_set() else next(self.chunks, None)
        except Exception:
            if not self.stopped.is_set():  # not our own close cutting a fetch short
                self._end()
                raise
            piece = None
        if piece is None:
            self._end()
            raise StopIteration
        return piece

    def close(self) -> None:
        """Stop: the connection ends now, or after the chunk being fetched meanwhile."""
        self.stopped.set()
        if self._lock.acquire(blocking=False):
            try:
                if not self._ended:
                    self._ended = True
                    with contextlib.suppress(Exception):
                        self.client.shutdown()  # no LOGOUT: a fetch in another thread may still read
            finally:
                self._lock.release()

    def _end(self) -> None:
        """Log out (or just drop the socket), once."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - the server or the socket may be gone already
            with contextlib.suppress(Exception):
                self.client.shutdown()


def _streamed(client: IMAPClient, chunks: Iterator[bytes]) -> _Stream:
    """``chunks`` with the first one fetched now, ending ``client`` when done or closed."""
    return _Stream(client, chunks)


def _etag(*parts: object) -> str:
    """A strong ETag: a message's bytes never change at one (UIDVALIDITY, UID)."""
    return '"' + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


def raw_message(actor: Principal, email_id: int) -> Download:
    """The original message, as the server has it (``message/rfc822``)."""
    with session_scope() as session:
        email, place = _place(session, actor, email_id)
    client = _opened(place)
    chunks = _streamed(client, fetch_chunks(client, place.uid))
    return Download(
        filename=f"{email.id}.eml",
        content_type="message/rfc822",
        etag=_etag("raw", place.server.id, place.folder, place.uidvalidity, place.uid),
        chunks=chunks,
    )


def attachment(actor: Principal, email_id: int, attachment_id: int) -> tuple[Attachment, Download]:
    """One attachment of one of the principal's emails, decoded (base64, quoted-printable) as it streams."""
    with session_scope() as session:
        email, place = _place(session, actor, email_id)
        attachments = crud_emails.attachments_of(session, email_ids=[email_id])[email_id]
    index = next((n for n, row in enumerate(attachments) if row.id == attachment_id), None)
    if index is None:
        raise NotFound()
    row = attachments[index]
    client = _opened(place)
    section, encoding = row.section, row.encoding
    if not section:
        section, encoding = _locate(client, place.uid, index)
    chunks = _streamed(client, decoded(fetch_chunks(client, place.uid, section), encoding))
    download = Download(
        filename=row.filename or f"attachment-{row.id}",
        content_type=row.content_type,
        etag=_etag("part", place.server.id, place.folder, place.uidvalidity, place.uid, section),
        chunks=chunks,
    )
    return row, download


def _locate(client: IMAPClient, uid: int, index: int) -> tuple[str, str]:
    """Section and encoding of the ``index``-th attachment, from the message itself (for rows mirrored
    before sections were kept): fetched whole, up to SYNC_MAX_MESSAGE_BYTES, and parsed as the sync did."""
    raw = b"".join(
        itertools.islice(fetch_chunks(client, uid), settings.sync_max_message_bytes // (1 << 20) + 1)
    )
    parsed = parse_message(raw, max_body_chars=1)
    if index >= len(parsed.attachments):
        raise NotFound()
    found = parsed.attachments[index]
    return found.section, found.encoding
