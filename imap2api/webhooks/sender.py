"""One delivery attempt: a signed JSON POST with connect/read timeouts, summarised as a result.

No retries and no Dramatiq here: the caller decides what a result means (see ``retry.py``).
Redirects are not followed (a redirect could lead to an address the check refused), proxies from
the environment are ignored (the request must reach the checked address), and only the first
``RESPONSE_EXCERPT_BYTES`` of a response are read, so a receiver cannot make a worker download
a large body.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from imap2api import __version__
from imap2api.config import settings
from imap2api.webhooks.addresses import AddressRefused, ResolutionFailed, resolve_target

RESPONSE_EXCERPT_BYTES = 2048
USER_AGENT = f"imap2api-webhooks/{__version__}"


@dataclass(frozen=True)
class SendResult:
    """What one attempt got: a status (None without a response), a body excerpt, an error text.

    ``refused`` marks a failure no retry can fix (address refused, unusable URL); ``retry_after``
    is the raw ``Retry-After`` header of the response, if any.
    """

    status_code: int | None
    body: str
    error: str
    duration_ms: int
    retry_after: str | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        """Whether the receiver accepted the message (any 2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300


def _clean(text: str) -> str:
    """Text safe to store in any database (PostgreSQL refuses NUL in text)."""
    return text.replace("\x00", "\ufffd")


def send(url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> SendResult:
    """POST ``body`` to ``url`` with ``headers`` once; never raises for network or HTTP failures."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = resolve_target(url)
    except AddressRefused as exc:
        return SendResult(None, "", _clean(f"address refused: {exc}"), elapsed(), refused=True)
    except ResolutionFailed as exc:
        return SendResult(None, "", _clean(f"connection error: {exc}"), elapsed())
    except (ValueError, httpx.InvalidURL) as exc:
        return SendResult(None, "", _clean(f"invalid URL: {exc}"), elapsed(), refused=True)

    seconds = settings.webhook_timeout_seconds if timeout is None else timeout
    request_headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **headers,
        "host": target.host_header,
    }
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    try:
        with httpx.Client(timeout=httpx.Timeout(seconds), trust_env=False, follow_redirects=False) as client:
            request = client.build_request(
                "POST", target.url, content=body, headers=request_headers, extensions=extensions
            )
            response = client.send(request, stream=True)
            excerpt = b""
            try:
                for chunk in response.iter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                        break
            except httpx.HTTPError:
                pass  # the status line is the answer; a body cut short changes nothing
            finally:
                response.close()
            text = excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")
            return SendResult(
                response.status_code,
                _clean(text),
                "",
                elapsed(),
                retry_after=response.headers.get("retry-after"),
            )
    except httpx.TimeoutException as exc:
        return SendResult(None, "", _clean(f"timeout: {type(exc).__name__} after {seconds:g}s"), elapsed())
    except httpx.HTTPError as exc:
        return SendResult(None, "", _clean(f"connection error: {type(exc).__name__}: {exc}"), elapsed())
