"""Turning bytes into text whatever charset a message claims."""

from __future__ import annotations

import codecs

# Names seen in real mail that Python does not know, or knows under another name.
ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-greek": "mac_greek",
    "x-mac-turkish": "mac_turkish",
    "x-mac-ce": "mac_latin2",
    "x-sjis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "x-gbk": "gbk",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "utf8": "utf-8",
    "x-unicode-2-0-utf-7": "utf-7",
    "unicode-1-1-utf-7": "utf-7",
}
# Placeholders that carry no information: guess instead.
UNKNOWN = {"", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "none", "8bit", "x-user-defined"}


def normalize_charset(charset: str | None) -> str | None:
    """A codec name Python can use, or None to mean "guess"."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if name in UNKNOWN:
        return None
    name = ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, else UTF-8, else Windows-1252; never raises."""
    name = normalize_charset(charset)
    if name in ("us-ascii", "ascii") and not data.isascii():
        name = None  # declared ASCII but carries 8-bit bytes: the label lies
    if name is not None:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if name is not None:
        try:
            return data.decode(name, errors="replace")
        except LookupError:
            pass
    return data.decode("cp1252", errors="replace")
