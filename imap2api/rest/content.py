"""``/emails/{id}/attachments/{attachment_id}/`` and ``/emails/{id}/raw/``: bytes from the IMAP server.

The caller's right to the email is checked by a GraphQL query, as on every route; the bytes then
stream from IMAP (imap2api.services.content), which GraphQL cannot carry. Every download is served
as a file, never as a page of this site: ``Content-Security-Policy: sandbox`` and ``nosniff``, so
an HTML attachment opened inline runs no script here.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from imap2api.errors import NotFound, SyncFailed
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.emails import router
from imap2api.rest.errors import ApiError, not_found
from imap2api.services import content
from imap2api.services.principal import Principal

OWNED = "query($id: ID!) { email(id: $id) { id } }"
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The bytes."},
    404: {},
    502: {},
}


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter (1, true, yes)."""
    return (request.query_params.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


async def _served(request: Request, user: Any, opener: Any, *args: Any) -> content.Download:
    """Check the caller's right through GraphQL, then open the download; IMAP failures as 404/502."""
    await execute(OWNED, {"id": str(args[0])}, user=user)
    try:
        result = await run_in_threadpool(opener, Principal.of_user(user), *args)
    except NotFound:
        raise not_found() from None
    except SyncFailed as exc:
        raise ApiError(502, {"detail": exc.message, "code": exc.code}) from exc
    download: content.Download = result[1] if isinstance(result, tuple) else result
    return download


class DownloadResponse(StreamingResponse):
    """Streams a Download and ends its IMAP connection however the answer ends: read to the end, the
    client gone (Starlette cancels the answer, and an iterator it was reading would wait for the
    garbage collector to be closed), or an error."""

    def __init__(self, download: content.Download, *, inline: bool) -> None:
        super().__init__(
            download.chunks,
            media_type=download.content_type,
            headers=content.file_headers(download, inline=inline),
        )
        self.download = download

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await run_in_threadpool(self.download.close)


def _answer(request: Request, download: content.Download, *, inline: bool) -> Response:
    """The streaming answer, or 304 when the caller has these bytes already."""
    if request.headers.get("if-none-match") == download.etag:
        download.close()
        return Response(status_code=304, headers=content.file_headers(download, inline=inline, body=False))
    return DownloadResponse(download, inline=inline)


@router.get("/{email_id:int}/attachments/{attachment_id:int}/", response_model=None, responses=DOWNLOAD)
async def download_attachment(
    email_id: int, attachment_id: int, request: Request, user: CurrentUser
) -> Response:
    """An attachment's decoded bytes, with its Content-Type; ``?inline=1`` to show it rather than save it."""
    download = await _served(request, user, content.attachment, email_id, attachment_id)
    return _answer(request, download, inline=_flag(request, "inline"))


@router.get("/{email_id:int}/raw/", response_model=None, responses=DOWNLOAD)
async def download_raw(email_id: int, request: Request, user: CurrentUser) -> Response:
    """The original message (``message/rfc822``), as an ``.eml`` file."""
    download = await _served(request, user, content.raw_message, email_id)
    return _answer(request, download, inline=False)
