"""Header helpers: charsets, RFC 2047 words, raw 8-bit bytes, parameters, addresses and dates."""

from __future__ import annotations

import binascii
import codecs
import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import decode_params, getaddresses, parsedate_tz, unquote
from functools import lru_cache
from typing import Any

__all__ = [
    "clean",
    "content_charset",
    "decode_bytes",
    "decode_header",
    "decode_words",
    "format_addresses",
    "header_param",
    "header_text",
    "parse_addresses",
    "parse_date",
    "resolve_charset",
]

# Labels seen in real mail that Python lacks, or where a superset decodes more real messages
# (mail labelled gb2312 or iso-8859-1 routinely carries gbk or windows-1252 characters).
_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "x-windows-949": "cp949",
    "windows-874": "cp874",
    "x-windows-874": "cp874",
    "tis-620": "cp874",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "x-mac-ce": "mac_latin2",
    "x-mac-centraleurroman": "mac_latin2",
    "x-mac-ukrainian": "mac_cyrillic",
    "x-mac-japanese": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "x-euc-cn": "gb18030",
    "euc-cn": "gb18030",
    "big5": "cp950",
    "x-big5": "cp950",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "utf8": "utf-8",
    "x-utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
}
# Labels that say nothing (or "ASCII", which lies whenever 8-bit bytes follow): guess instead.
_GUESS = {
    "",
    "unknown",
    "unknown-8bit",
    "x-unknown",
    "default",
    "charset",
    "none",
    "8bit",
    "7bit",
    "binary",
    "x-user-defined",
    "us-ascii",
    "ascii",
    "us",
    "ansi_x3.4-1968",
    "iso646-us",
    "iso-646-us",
    "cp367",
    "ibm367",
}
# Python codecs that are not charsets mail could be written in.
_NOT_CHARSETS = {
    "base64",
    "base64_codec",
    "hex",
    "hex_codec",
    "zlib",
    "zlib_codec",
    "bz2",
    "bz2_codec",
    "rot13",
    "rot_13",
    "uu",
    "uu_codec",
    "quopri",
    "quopri_codec",
    "idna",
    "punycode",
    "unicode_escape",
    "raw_unicode_escape",
    "undefined",
    "mbcs",
    "oem",
    "palmos",
}

# Codecs that give ASCII bytes another meaning (ISO-2022-JP mail is pure 7-bit).
_SEVEN_BIT_CODECS = ("utf-7", "iso2022", "hz", "utf-16", "utf-32")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]+")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_COMMENT = re.compile(r"\([^()]*\)")
# One entry of a plain address list: 'addr', 'Name <addr>' or '"Name" <addr>', then a comma or the end.
# Anything fancier (comments, groups, quoted local parts) goes to the stdlib's slower full parser.
_SIMPLE_ADDRESS = re.compile(
    r'\s*+(?:(?:"(?P<quoted>(?:[^"\\]|\\.)*+)"\s*+|(?P<name>(?:[^<>"(),;:\\@\[\]\s]++\s*+)*+))'
    r'<(?P<addr>[^<>\s"(),;:\\\[\]]*+)>'
    r'|(?P<bare>[^<>\s"(),;:\\\[\]]++))\s*+(?:,|$)'
)  # possessive quantifiers: no backtracking, linear time on hostile input
# One parameter: quoted strings (";" inside them is text) and anything else up to the next ";".
_PARAM_CHUNK = re.compile(r'(?:"(?:[^"\\]|\\.)*+(?:"|\Z)|[^";])*+')
_CHARSET_PARAM = re.compile(r"""(?:^|[;\s])charset\s*=\s*["']?\s*([^"';\s]+)""", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(.)")
_NAME_SPECIALS = frozenset(',;:<>@"')
# C0 controls and DEL go; tabs and stray line breaks become spaces.
_CLEAN = {i: None for i in (*range(0x20), 0x7F)} | {0x09: " ", 0x0A: " ", 0x0D: " "}
_MAX_FUTURE = timedelta(days=366)
_MAX_PARSED_ADDRESSES = 100_000


@lru_cache(maxsize=512)
def resolve_charset(charset: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None to mean "unknown: guess"."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").strip().lower()
    if name.startswith("charset="):
        name = name[8:].strip("\"'")
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
    if name in _GUESS:
        return None
    name = _ALIASES.get(name, name)
    if name.startswith("x-mac-"):
        name = "mac_" + name[6:]
    for candidate in (name, name.replace("_", "-"), name.replace("-", ""), name.removeprefix("x-")):
        try:
            codec = codecs.lookup(candidate).name
        except Exception:  # LookupError, or ValueError for NUL in the name
            continue
        if codec in _NOT_CHARSETS:
            return None
        return "cp1252" if codec == "latin-1" else codec
    return None


def _guess(data: bytes, fallback: str | None = None) -> str:
    """Undeclared or mislabelled bytes: UTF-8 when valid, else ``fallback``, else Windows-1252/Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = resolve_charset(fallback) if fallback else None
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec)
        except Exception:  # try the next guess
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode with the declared charset and sensible fallbacks; never raises."""
    codec = resolve_charset(charset) if charset else None
    if data.isascii() and (codec is None or not codec.startswith(_SEVEN_BIT_CODECS)):
        return data.decode("ascii")
    if codec is None:
        return _guess(data)
    try:
        return _no_surrogates(data.decode(codec), codec)
    except UnicodeDecodeError:
        pass
    except Exception:  # a broken codec is an unknown charset
        return _guess(data)
    if codec == "cp1252":
        return data.decode("latin-1")
    if codec == "utf-8" and not _UTF8_SEQUENCE.search(data):
        return _guess(data)  # labelled UTF-8 but written in a legacy 8-bit charset
    try:
        return _no_surrogates(data.decode(codec, "replace"), codec)
    except Exception:
        return _guess(data)


def _no_surrogates(text: str, codec: str) -> str:
    """Python's UTF-7 decoder lets lone surrogates through; they cannot be stored as UTF-8."""
    return _LONE_SURROGATE.sub("\ufffd", text) if codec == "utf-7" else text


def clean(text: str) -> str:
    """Without control characters (NUL included); tabs and line breaks become spaces."""
    return text if text.isprintable() else text.translate(_CLEAN)


def _from_8bit(value: str, fallback: str | None) -> str:
    """Recover raw 8-bit header bytes (compat32 keeps them as surrogate escapes) and decode them."""
    try:
        return _guess(value.encode("utf-8", "surrogateescape"), fallback)
    except UnicodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def header_text(value: str | None, fallback: str | None = None) -> str:
    """A raw header value with 8-bit bytes decoded and folding undone; encoded-words untouched."""
    # Raw 8-bit bytes: UTF-8 when valid, else ``fallback`` (the body's charset, as mail clients
    # do), else Windows-1252/Latin-1.
    if not value:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if not value.isascii():
        value = _from_8bit(value, fallback)
    if "\n" in value:
        value = _FOLD.sub(" ", value)
    return value


def _word_bytes(encoding: str, text: str) -> bytes:
    """The bytes of one encoded-word's text; malformed base64 and quoted-printable tolerated."""
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(raw, header=True)
    data = _NOT_BASE64.sub("", text)
    if len(data) % 4 == 1:
        data = data[:-1]
    return binascii.a2b_base64(data + "=" * (-len(data) % 4))


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded-words; whitespace between adjacent words is dropped, bytes joined."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = b""
    pending_charset: str | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        if pending_charset is None or (gap and not gap.isspace()):
            if pending_charset is not None:
                out.append(decode_bytes(pending, pending_charset))
                pending, pending_charset = b"", None
            out.append(gap)
        try:
            data = _word_bytes(match.group(2), match.group(3))
        except (binascii.Error, ValueError):
            data = match.group(0).encode("utf-8", "surrogateescape")
        charset = match.group(1).split("*", 1)[0].lower()
        # Multi-byte characters are split across adjacent words: join bytes before decoding.
        if pending_charset is not None and charset != pending_charset:
            out.append(decode_bytes(pending, pending_charset))
            pending = b""
        pending += data
        pending_charset = charset
        pos = match.end()
    if pending_charset is not None:
        out.append(decode_bytes(pending, pending_charset))
    out.append(text[pos:])
    return "".join(out)


def decode_header(value: str | None, fallback: str | None = None) -> str:
    """An unstructured header (Subject, a file name) as clean, unfolded, stripped text."""
    return clean(decode_words(header_text(value, fallback))).strip()


def _split_params(text: str) -> list[tuple[str, str]]:
    """``value; a=1; b="x;y"`` as [("", "value"), ("a", "1"), ("b", '"x;y"')], quotes respected."""
    params: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        match = _PARAM_CHUNK.match(text, pos)
        chunk = match.group() if match else ""
        if params:
            name, _, val = chunk.partition("=")
            params.append((name.strip().lower(), val.strip()))
        else:
            params.append(("", chunk.strip()))
        pos += len(chunk) + 1  # past the ";"
        if pos > end:
            return params


def header_param(value: str | None, name: str, fallback: str | None = None) -> str | None:
    """A decoded parameter of a structured header (RFC 2231 continuations and charsets, RFC 2047)."""
    text = header_text(value, fallback)
    if name not in text.lower():
        return None
    params: list[Any] = _split_params(text)
    with contextlib.suppress(Exception):  # mixed numbered and unnumbered continuations raise
        params = decode_params(params)
    for key, val in params[1:]:
        if key.rstrip("*") != name:
            continue
        if isinstance(val, tuple):
            charset, _, quoted = val
            raw = unquote(quoted)
            with contextlib.suppress(UnicodeEncodeError):  # else already text (8-bit bytes recovered)
                raw = decode_bytes(raw.encode("latin-1"), charset)
        else:
            raw = unquote(val)
        result = decode_header(raw)
        if result:
            return result
    return None


def content_charset(value: str | None) -> str | None:
    """The charset parameter of a Content-Type value (fast path; RFC 2231 forms via header_param)."""
    if not value:
        return None
    if "charset*" in value.lower():
        return header_param(value, "charset")
    match = _CHARSET_PARAM.search(value)
    return match.group(1) if match else None


def parse_addresses(values: list[str], fallback: str | None = None) -> list[tuple[str, str]]:
    """(display name, address) pairs of address headers, decoded and kept as written; empties skipped."""
    texts = [clean(header_text(value, fallback)) for value in values if value]
    if not texts:
        return []
    try:
        pairs = _simple_addresses(", ".join(texts))
        if pairs is None:
            # The stdlib parser takes about 3 µs a character: bound what a hostile header costs.
            pairs = getaddresses([text[:_MAX_PARSED_ADDRESSES] for text in texts])
        if "=?" in "".join(texts) and not any("@" in addr for _, addr in pairs):
            # The whole header encoded, addresses included (broken mailers): decode first.
            decoded = [clean(decode_words(text)).strip() for text in texts]
            if any("@" in text for text in decoded):
                pairs = getaddresses(decoded)
            elif not any(name for name, _ in pairs):
                return [(text, "") for text in decoded if text]  # only a display name, no address
    except Exception:  # e.g. RecursionError on thousands of nested "(": keep some text as a name
        return [(clean(decode_words(", ".join(texts)[:1000])).strip(), "")]
    result = []
    for name, addr in pairs:
        addr = addr.strip()  # the texts were cleaned above
        if addr:
            if "=?" in name:
                name = clean(decode_words(name))
            result.append((name.strip(), addr))
    return result


def _simple_addresses(text: str) -> list[tuple[str, str]] | None:
    """What ``getaddresses`` returns for a plain address list, ten times faster; None when not plain."""
    pairs = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _SIMPLE_ADDRESS.match(text, pos)
        if match is None:
            return None
        quoted, name, addr, bare = match.group("quoted", "name", "addr", "bare")
        if bare is not None:
            pairs.append(("", bare))
        elif quoted is not None:
            pairs.append((_ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted, addr))
        else:
            pairs.append((" ".join(name.split()), addr))
        pos = match.end()
    return pairs


def format_addresses(pairs: list[tuple[str, str]]) -> str:
    """``Name <addr>, addr2`` for display; names holding commas and the like are quoted."""
    return ", ".join(
        f"{_display_name(name)} <{addr}>" if name and addr else name or addr for name, addr in pairs
    )


def _display_name(name: str) -> str:
    """A display name, quoted when it would otherwise read as several addresses."""
    if any(char in name for char in _NAME_SPECIALS):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


# What parsedate_tz gives: the nine time.struct_time fields and the zone offset in seconds (None if absent).
_DateFields = tuple[int, int, int, int, int, int, int, int, int, int | None]


def _date_tuple(text: str) -> _DateFields | None:
    """RFC 5322 date fields via the stdlib, retried without comments; None when unparseable."""
    for candidate in (text, _COMMENT.sub(" ", text)):
        try:
            parsed = parsedate_tz(candidate)
        except Exception:
            parsed = None
        if parsed is not None:
            return parsed
    return None


def parse_date(value: str | None) -> datetime | None:
    """The Date header as an aware UTC datetime; None when missing, unusable or absurd."""
    text = clean(header_text(value)).strip()
    if not text:
        return None
    fields = _date_tuple(text)
    try:
        if fields is not None:
            year, month, day, hour, minute, second = fields[:6]
            offset = fields[9]
            zone = UTC
            if offset and abs(offset) < 86400:
                zone = timezone(timedelta(seconds=offset))
            parsed = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)
        else:
            parsed = datetime.fromisoformat(text)  # a few mailers write ISO 8601
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)  # no zone given: assume UTC
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError, TypeError):
        return None
    if parsed.year < 1970 or parsed > datetime.now(UTC) + _MAX_FUTURE:
        return None
    return parsed
