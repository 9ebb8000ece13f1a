"""``/emails/``: lists, details, threads, folders and statistics of the mirrored mail."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request

from imap2api.config import settings
from imap2api.graphql.types.email import MAX_ATTACHMENTS
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.errors import ApiError
from imap2api.rest.pagination import PAGE_ARGUMENTS, PAGE_VARIABLES
from imap2api.rest.resource import list_page
from imap2api.rest.schemas import (
    EmailDetail,
    EmailList,
    Statistics,
    ThreadEmail,
    documented,
)
from imap2api.rest.wire import JSONRoute, iso_z

router = APIRouter(prefix="/emails", tags=["emails"], route_class=JSONRoute)

LIST_FIELDS = (
    "id messageId subject sender senderName recipient cc date folder threadId threadCount imapServer"
    " seen flagged hasAttachments"
)
THREAD_FIELDS = "id subject sender recipient date bodyText bodyHtml folder"
# thread_emails lists the whole rest of the thread (as apidoc shows), up to IMAP2API_MAX_THREAD_EMAILS.
# $cidUrls: whether the HTML body's cid: references become download URLs (?cid_urls=true).
DETAIL_FIELDS = f"""{LIST_FIELDS} bodyText bodyHtml(cidUrls: $cidUrls)
  createdAt updatedAt inReplyTo references flags size
  attachments(limit: {MAX_ATTACHMENTS}) {{ id filename contentType size contentId inline downloadUrl }}
  threadEmails(limit: $members) {{ {THREAD_FIELDS} }}"""
LIST_VARIABLES = f"""$q: String, $folder: String, $imapServer: ID, $dateFrom: Date, $dateTo: Date,
  $ordering: String, {PAGE_VARIABLES}"""
LIST_ARGUMENTS = f"""q: $q, folder: $folder, imapServer: $imapServer, dateFrom: $dateFrom, dateTo: $dateTo,
  ordering: $ordering, {PAGE_ARGUMENTS}"""
PAGE = f"count page hasNext hasPrevious results {{ {LIST_FIELDS} }}"

LIST = (
    f"query({LIST_VARIABLES}, $thread: Boolean!) {{ emails({LIST_ARGUMENTS}, thread: $thread) {{ {PAGE} }} }}"
)
THREADS = f"query({LIST_VARIABLES}) {{ threads({LIST_ARGUMENTS}) {{ {PAGE} }} }}"
DETAIL = f"query($id: ID!, $members: Int!, $cidUrls: Boolean!) {{ email(id: $id) {{ {DETAIL_FIELDS} }} }}"
THREAD = f"query($id: ID!) {{ emailThread(emailId: $id) {{ {THREAD_FIELDS} }} }}"
FOLDERS = "query($imapServer: ID) { folders(imapServer: $imapServer) }"
STATISTICS = (
    "query($imapServer: ID) { statistics(imapServer: $imapServer) {"
    " totalEmails totalThreads folders { name count } } }"
)

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


def to_rest_list_item(email: dict[str, Any]) -> dict[str, Any]:
    """GraphQL Email → the apidoc list item."""
    return {
        "id": int(email["id"]),
        "message_id": email["messageId"],
        "subject": email["subject"],
        "sender": email["sender"],
        "recipient": email["recipient"],
        "date": iso_z(email["date"]),
        "folder": email["folder"],
        "thread_id": email["threadId"],
        "thread_count": email["threadCount"],
        "imap_server": int(email["imapServer"]),
        "sender_name": email["senderName"],
        "cc": email["cc"],
        "seen": email["seen"],
        "flagged": email["flagged"],
        "has_attachments": email["hasAttachments"],
    }


def to_rest_thread_email(email: dict[str, Any]) -> dict[str, Any]:
    """GraphQL Email → an apidoc thread member."""
    return {
        "id": int(email["id"]),
        "subject": email["subject"],
        "sender": email["sender"],
        "recipient": email["recipient"],
        "date": iso_z(email["date"]),
        "body_text": email["bodyText"],
        "body_html": email["bodyHtml"],
        "folder": email["folder"],
    }


def to_rest_detail(email: dict[str, Any]) -> dict[str, Any]:
    """GraphQL Email → the apidoc detail object."""
    return {
        **to_rest_list_item(email),
        "body_text": email["bodyText"],
        "body_html": email["bodyHtml"],
        "created_at": iso_z(email["createdAt"]),
        "updated_at": iso_z(email["updatedAt"]),
        "in_reply_to": email["inReplyTo"],
        "references": email["references"],
        "flags": email["flags"],
        "size": email["size"],
        "attachments": [
            {
                "id": int(a["id"]),
                "filename": a["filename"],
                "content_type": a["contentType"],
                "size": a["size"],
                "content_id": a["contentId"],
                "inline": a["inline"],
                "download_url": a["downloadUrl"],
            }
            for a in email["attachments"]
        ],
        "thread_emails": [to_rest_thread_email(member) for member in email["threadEmails"]],
    }


DATE_FORMAT_ERROR = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."


def _dates(params: Any) -> dict[str, str | None]:
    """``date_from``/``date_to`` as GraphQL Date variables; DRF's message for any other format."""
    values, errors = {}, {}
    for name, variable in (("date_from", "dateFrom"), ("date_to", "dateTo")):
        value = params.get(name) or None
        try:
            if value is not None and (len(value) != 10 or not date.fromisoformat(value)):
                raise ValueError
        except ValueError:
            errors[name] = [DATE_FORMAT_ERROR]
        values[variable] = value
    if errors:
        raise ApiError(400, errors)
    return values


def _filters(request: Request) -> dict[str, Any]:
    """The list's filter parameters as GraphQL variables (list_page adds the page ones)."""
    params = request.query_params
    return {
        **_dates(params),
        "q": params.get("q") or None,
        "folder": params.get("folder") or None,
        "imapServer": params.get("imap_server") or None,
        "ordering": params.get("ordering") or None,
    }


def cid_urls(request: Request) -> bool:
    """The ``cid_urls`` parameter (true/false, default false)."""
    value = (request.query_params.get("cid_urls") or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, {"cid_urls": ["Must be a valid boolean."]})


def _thread_flag(value: str | None) -> bool:
    """The ``thread`` parameter (true/false)."""
    lowered = (value or "").strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ApiError(400, {"thread": ["Must be a valid boolean."]})


LIST_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    for name, schema, description in [
        (
            "q",
            {"type": "string"},
            'search: words, "phrases", from: to: subject: in: has:attachment is: after: before: -negation',
        ),
        ("folder", {"type": "string"}, "exact folder name"),
        ("imap_server", {"type": "integer"}, "IMAP server id"),
        ("date_from", {"type": "string", "format": "date"}, "YYYY-MM-DD, inclusive"),
        ("date_to", {"type": "string", "format": "date"}, "YYYY-MM-DD, inclusive"),
        (
            "ordering",
            {"type": "string"},
            "date, subject, sender, folder, created_at; prefix - for descending",
        ),
        ("page", {"type": "string"}, "page number or 'last'"),
        ("page_size", {"type": "integer", "minimum": 1, "maximum": 100}, "default 50, max 100"),
    ]
]


@router.get(
    "/",
    response_model=None,
    responses=documented(EmailList),
    openapi_extra={
        "parameters": [
            *LIST_PARAMETERS,
            {"name": "thread", "in": "query", "required": False, "schema": {"type": "boolean"}},
        ]
    },
)
async def list_emails(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The caller's emails, filtered, searched, ordered and paginated."""
    thread = _thread_flag(request.query_params.get("thread"))
    return await list_page(
        request, user, LIST, "emails", to_rest_list_item, **_filters(request), thread=thread
    )


@router.get(
    "/threads/",
    response_model=None,
    responses=documented(EmailList),
    openapi_extra={"parameters": LIST_PARAMETERS},
)
async def list_threads(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Each conversation once (its newest message), with its thread_count."""
    return await list_page(request, user, THREADS, "threads", to_rest_list_item, **_filters(request))


@router.get("/folders/", response_model=None, responses=documented(list[str]))
async def list_folders(request: Request, user: CurrentUser) -> list[str]:
    """Names of the mirrored folders, INBOX first."""
    variables = {"imapServer": request.query_params.get("imap_server") or None}
    folders: list[str] = (await execute(FOLDERS, variables, user=user))["folders"]
    return folders


@router.get("/statistics/", response_model=None, responses=documented(Statistics))
async def statistics(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Total emails, distinct threads and emails per folder."""
    variables = {"imapServer": request.query_params.get("imap_server") or None}
    stats = (await execute(STATISTICS, variables, user=user))["statistics"]
    return {
        "total_emails": stats["totalEmails"],
        "total_threads": stats["totalThreads"],
        "folders": {folder["name"]: folder["count"] for folder in stats["folders"]},
    }


@router.get("/{email_id:int}/", response_model=None, responses=documented(EmailDetail))
async def get_email(email_id: int, request: Request, user: CurrentUser) -> dict[str, Any]:
    """One email with its bodies and the rest of its thread (``?cid_urls=true``: inline images of
    ``body_html`` pointing at their download URLs)."""
    variables = {"id": str(email_id), "members": settings.max_thread_emails, "cidUrls": cid_urls(request)}
    return to_rest_detail((await execute(DETAIL, variables, user=user))["email"])


@router.get("/{email_id:int}/thread/", response_model=None, responses=documented(list[ThreadEmail]))
async def get_thread(email_id: int, user: CurrentUser) -> list[dict[str, Any]]:
    """The whole thread of an email, in date order."""
    members = (await execute(THREAD, {"id": str(email_id)}, user=user))["emailThread"]
    return [to_rest_thread_email(member) for member in members]
