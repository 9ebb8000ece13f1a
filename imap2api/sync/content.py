"""Message content read from IMAP on demand: one part, or the whole message, in chunks, decoded as it streams.

Each chunk is a partial FETCH (``BODY.PEEK[2]<0.1048576>``, RFC 3501 6.4.5): memory stays at one
chunk whatever the size, and PEEK never sets ``\\Seen``. Base64 and quoted-printable are decoded
chunk by chunk (a chunk's incomplete quantum or line waits for the next one).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator

from imapclient import IMAPClient

from imap2api.errors import NotFound
from imap2api.sync.imap import uid_fetch

CHUNK_BYTES = 1 << 20
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def fetch_chunks(
    client: IMAPClient, uid: int, section: str = "", *, chunk: int | None = None
) -> Iterator[bytes]:
    """The raw bytes of ``BODY[section]`` (``""``: the whole message) of a message of the selected folder.

    Raises NotFound if the message is not there (before anything is yielded).
    """
    chunk = chunk or CHUNK_BYTES
    offset = 0
    while True:
        data = uid_fetch(client, str(uid), [f"BODY.PEEK[{section}]<{offset}.{chunk}>"])
        entry = data.get(uid)
        if entry is None:
            if offset == 0:
                raise NotFound()
            return
        value = next((v for key, v in entry.items() if key.startswith(b"BODY[")), None)
        piece = value if isinstance(value, bytes) else b""
        if piece:
            yield piece
        if len(piece) < chunk:
            return
        offset += len(piece)


class _Base64:
    """Decodes base64 fed in pieces of any length (line breaks and junk between quanta are skipped)."""

    def __init__(self) -> None:
        self.rest = b""
        self.done = False  # padding seen: the data ends there, whatever follows

    def feed(self, data: bytes) -> bytes:
        """What the complete quanta so far decode to."""
        if self.done:
            return b""
        head, padding, _ = data.partition(b"=")
        self.done = bool(padding)
        text = self.rest + _NOT_BASE64.sub(b"", head)
        cut = len(text) - len(text) % 4
        self.rest = text[cut:]
        return binascii.a2b_base64(text[:cut]) if cut else b""

    def end(self) -> bytes:
        """The last quantum, padded as needed (a dangling sixth bit group is dropped)."""
        text, self.rest = self.rest, b""
        if len(text) % 4 == 1:
            text = text[:-1]
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4)) if text else b""


class _QuotedPrintable:
    """Decodes quoted-printable fed in pieces: complete lines only, so no ``=XX`` or soft break is split."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> bytes:
        """What the complete lines so far decode to."""
        text = self.rest + data
        cut = text.rfind(b"\n") + 1
        self.rest = text[cut:]
        return binascii.a2b_qp(text[:cut]) if cut else b""

    def end(self) -> bytes:
        """The last line."""
        text, self.rest = self.rest, b""
        return binascii.a2b_qp(text) if text else b""


class _Identity:
    """7bit, 8bit, binary, or an encoding nobody knows: the bytes as they are."""

    def feed(self, data: bytes) -> bytes:
        """``data``."""
        return data

    def end(self) -> bytes:
        """Nothing."""
        return b""


def decoded(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """``chunks`` with their Content-Transfer-Encoding undone, piece by piece."""
    kind = encoding.strip().lower()
    decoder = (
        _Base64() if kind == "base64" else _QuotedPrintable() if kind == "quoted-printable" else _Identity()
    )
    for chunk in chunks:
        try:
            piece = decoder.feed(chunk)
        except binascii.Error:
            decoder, piece = _Identity(), chunk  # damaged: the rest as it is rather than nothing
        if piece:
            yield piece
    tail = decoder.end()
    if tail:
        yield tail
