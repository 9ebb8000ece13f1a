"""Html to plain text: the text/plain alternative composing adds to an html message without one.

A pure function over the stdlib ``html.parser``, no I/O; imap2api.mail.compose and imap2api.mail.forward
use it. The text is derived as Gmail does: tags stripped, blocks on lines of their own, links kept as
``text <url>``; script, style and the like are dropped. imap2api.mail has no other such helper (reading
mail keeps the html as it is), so it is this one.
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})  # a blank line around
_BLOCK_TAGS = _PARAGRAPH_TAGS | frozenset(
    {"address", "article", "aside", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer"}
    | {"form", "header", "hr", "main", "nav", "ol", "pre", "section", "table", "tbody", "thead"}
    | {"tfoot", "tr", "ul"}  # not li: its "- " opens a line, and a closing one adds none
)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg"})
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr", "source"})
_SPACES = re.compile(r"[ \t\f\v\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    """Collects the visible text of an html document, with line breaks where blocks end."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0  # depth inside script, style and the like
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, position in out) of the open <a> elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Line breaks for blocks, "- " for list items, alt text for images, link targets noted."""
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif self.skipping:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "hr":
            self.out.append("\n---\n")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt") or ""
            if alt.strip():
                self.out.append(alt)
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")
        if tag == "pre" and not self.skipping:
            self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """``<br/>`` and the like: a start tag that opens nothing."""
        if tag in _SKIPPED_TAGS:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        """Close blocks with a line break; a link whose text is not its address gets `` <url>``."""
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif self.skipping or tag in _VOID_TAGS:
            return
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href.lower().startswith(("http://", "https://")) and href != label:
                self.out.append(f" <{href}>")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        """Visible text; outside <pre> whitespace collapses as a browser collapses it."""
        if self.skipping:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A plain-text rendering of html for the text/plain alternative: tags stripped, blocks on lines."""
    try:
        parser = _TextExtractor()
        parser.feed(html)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # HTMLParser is lenient, but a last resort costs nothing
        text = html_lib.unescape(re.sub(r"<[^>]*>", " ", html))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"
