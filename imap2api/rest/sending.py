"""``/emails/send/`` and ``/outbox/``: send mail through the server's SMTP server, follow and cancel it.

Each route runs one GraphQL operation (``sendEmail``, ``outboxMessages``, ``outboxMessage``,
``cancelOutboxMessage``). ``POST /emails/send/`` takes JSON (attachments in base64) or
multipart/form-data (each file under ``attachments``, or under ``inline`` for an image the html
shows as ``cid:<its filename>``; addresses as repeated ``to``/``cc``/``bcc`` fields); its body may
be as large as a message may be (``SEND_MAX_MESSAGE_BYTES``, base64 included), where every other
request is bounded by ``MAX_REQUEST_BYTES``. It answers ``202`` with the queued message; the
``Idempotency-Key`` header makes a retried request answer the first one's message (and
``Idempotent-Replayed: true``) without sending again.

Beside DRF's 400 and 404: 413 (the message is too large), 422 (the key was used for another
request), 429 (the per-user send rate, with ``Retry-After``), 409 (cancelling a message that is no
longer queued); each ``{"detail", "code"}``.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from imap2api.config import settings
from imap2api.enums import SendStatus
from imap2api.models import OutboxMessagePublic
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.emails import router as emails_router
from imap2api.rest.errors import ApiError
from imap2api.rest.pagination import PAGE_ARGUMENTS, PAGE_PARAMETERS, PAGE_VARIABLES
from imap2api.rest.resource import list_page
from imap2api.rest.schemas import (
    ERRORS,
    OUTBOX_IDS,
    SEND_ERRORS,
    CodedErrorBody,
    OutboxMessageList,
    OutboxMessageOut,
    SendEmailIn,
    documented,
)
from imap2api.rest.shapes import RestOutput
from imap2api.rest.wire import JSONRoute, coerce_fields, read_body

router = APIRouter(prefix="/outbox", tags=["outbox"], route_class=JSONRoute)

OUTBOX = RestOutput(OutboxMessagePublic, first=("id", "imap_server"), ids=OUTBOX_IDS)
FIELDS = OUTBOX.selection
to_rest = OUTBOX.to_rest
SEND_PATH = "/emails/send/"

SEND = f"""mutation($input: SendEmailInput!, $key: String) {{
  sendEmail(input: $input, idempotencyKey: $key) {{ replayed message {{ {FIELDS} }} }} }}"""
LIST = f"""query({PAGE_VARIABLES}, $status: SendStatus, $server: ID) {{
  outboxMessages({PAGE_ARGUMENTS}, status: $status, imapServer: $server) {{
    count page hasNext hasPrevious results {{ {FIELDS} }} }} }}"""
GET = f"query($id: ID!) {{ outboxMessage(id: $id) {{ {FIELDS} }} }}"
CANCEL = f"mutation($id: ID!) {{ cancelOutboxMessage(id: $id) {{ {FIELDS} }} }}"

ADDRESS_FIELDS = ("to", "cc", "bcc")
TEXT_FIELDS: dict[str, type] = {
    "imap_server": int,
    "subject": str,
    "text": str,
    "html": str,
    "reply_to_email": int,
    "forward_email": int,
    "forward_inline": bool,
}
STATUSES = tuple(SendStatus)


def _strings(value: Any, name: str) -> list[str]:
    """A list of strings (DRF's ListField(CharField)); a single string is a list of one."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ApiError(400, {name: [f'Expected a list of items but got type "{type(value).__name__}".']})
    if not all(isinstance(item, str) for item in value):
        raise ApiError(400, {name: ["Not a valid string."]})
    return value


def _attachments(value: Any) -> list[dict[str, Any]]:
    """The JSON ``attachments``: objects with filename, content_type, content_base64, content_id."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ApiError(400, {"attachments": ["Expected a list of objects."]})
    result = []
    for index, item in enumerate(value, 1):
        for name in ("filename", "content_base64"):
            if not isinstance(item.get(name), str):
                raise ApiError(400, {"attachments": [f"Attachment {index}: {name} is required (a string)."]})
        for name in ("content_type", "content_id"):
            if item.get(name) is not None and not isinstance(item[name], str):
                raise ApiError(400, {"attachments": [f"Attachment {index}: {name} must be a string."]})
        result.append(
            {
                "filename": item["filename"],
                "contentBase64": item["content_base64"],
                "contentType": item.get("content_type") or "application/octet-stream",
                "contentId": item.get("content_id") or "",
            }
        )
    return result


async def _multipart(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A multipart/form-data body: its fields, and its files as attachments (base64 for GraphQL)."""
    limit = settings.send_max_message_bytes
    form = await request.form(max_files=100, max_fields=1000, max_part_size=limit)
    fields: dict[str, Any] = {}
    files = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name not in ("attachments", "inline"):
                raise ApiError(400, {name: ["Files go under attachments (or inline, for cid: images)."]})
            data = await value.read()
            filename = value.filename or "attachment"
            files.append(
                {
                    "filename": filename,
                    "contentBase64": base64.b64encode(data).decode("ascii"),
                    "contentType": value.content_type or "application/octet-stream",
                    "contentId": filename if name == "inline" else "",
                }
            )
        elif name in ADDRESS_FIELDS:
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return fields, files


@emails_router.post(
    "/send/",
    status_code=202,
    response_model=None,
    responses={
        **documented(OutboxMessageOut, 202),
        **SEND_ERRORS,
        503: {"model": CodedErrorBody},
    },
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": SendEmailIn.model_json_schema()}}},
        "parameters": [
            {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}
        ],
    },
)
async def send_email(request: Request, user: CurrentUser) -> JSONResponse:
    """Queue a message for the server's SMTP server: 202 with the outbox message (status queued)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body, attachments = await _multipart(request)
    else:
        body = await read_body(request)
        attachments = _attachments(body.get("attachments"))
    plain = coerce_fields(body, TEXT_FIELDS)
    if plain.get("imap_server") is None:
        raise ApiError(400, {"imap_server": ["This field is required."]})
    payload = {
        "imapServer": str(plain["imap_server"]),
        **{name: _strings(body.get(name), name) for name in ADDRESS_FIELDS},
        "subject": plain.get("subject"),
        "text": plain.get("text") or "",
        "html": plain.get("html") or "",
        "replyToEmail": _optional_id(plain.get("reply_to_email")),
        "forwardEmail": _optional_id(plain.get("forward_email")),
        "forwardInline": bool(plain.get("forward_inline")),
        "attachments": attachments,
    }
    key = request.headers.get("idempotency-key")
    data = await execute(SEND, {"input": payload, "key": key}, user=user)
    sent = data["sendEmail"]
    headers = {"Idempotent-Replayed": "true"} if sent["replayed"] else {}
    return JSONResponse(to_rest(sent["message"]), status_code=202, headers=headers)


def _optional_id(value: int | None) -> str | None:
    """An id for GraphQL, or None."""
    return None if value is None else str(value)


@router.get(
    "/",
    response_model=None,
    responses=documented(OutboxMessageList),
    openapi_extra={"parameters": PAGE_PARAMETERS},
)
async def list_outbox(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The caller's outgoing messages, newest first, paginated (``?status=``, ``?imap_server=``)."""
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(
            400, {"status": [f"Select a valid choice. {status} is not one of the available choices."]}
        )
    server = request.query_params.get("imap_server") or None
    if server is not None and not server.isdigit():
        raise ApiError(
            400, {"imap_server": ["Select a valid choice. That choice is not one of the available choices."]}
        )
    variables = {"status": status.upper() if status else None, "server": server}
    return await list_page(request, user, LIST, "outboxMessages", to_rest, **variables)


@router.get("/{outbox_id:int}/", response_model=None, responses=documented(OutboxMessageOut))
async def get_outbox_message(outbox_id: int, user: CurrentUser) -> dict[str, Any]:
    """One outgoing message: status, attempts, the SMTP server's answer or error."""
    return to_rest((await execute(GET, {"id": str(outbox_id)}, user=user))["outboxMessage"])


@router.post(
    "/{outbox_id:int}/cancel/",
    response_model=None,
    responses={**documented(OutboxMessageOut), 409: {"model": CodedErrorBody}, **ERRORS},
)
async def cancel_outbox_message(outbox_id: int, user: CurrentUser) -> dict[str, Any]:
    """Cancel a queued message; one being sent or finished answers 409 NOT_CANCELLABLE."""
    return to_rest((await execute(CANCEL, {"id": str(outbox_id)}, user=user))["cancelOutboxMessage"])
