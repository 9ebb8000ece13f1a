"""``/emails/``: the writes (flags, move, delete, batch), each running one GraphQL mutation.

They join ``imap2api.rest.emails.router``, so that each path answers OPTIONS and HEAD for all of
its methods at once.

Beside DRF's 400 and 404: the IMAP server unreachable or refusing answers 502, a server that
cannot do it safely (no MOVE nor UIDPLUS) or a read-only folder 409, a sync of the server under
way for longer than a write waits 503 with ``Retry-After``; each body is ``{"detail", "code"}``
and the mirror is then as it was.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from imap2api.config import settings
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.emails import DETAIL_FIELDS, router, to_rest_detail
from imap2api.rest.errors import ApiError
from imap2api.rest.schemas import ERRORS, WRITE_ERRORS, EmailDetail, documented
from imap2api.rest.wire import coerce_fields, read_body

FLAG_VARIABLES = (
    "$seen: Boolean, $flagged: Boolean, $answered: Boolean, $flagsAdd: [String!], $flagsRemove: [String!]"
)
FLAG_ARGUMENTS = (
    "seen: $seen, flagged: $flagged, answered: $answered, flagsAdd: $flagsAdd, flagsRemove: $flagsRemove"
)
UPDATE = f"""mutation($id: ID!, $members: Int!, $cidUrls: Boolean!, {FLAG_VARIABLES}) {{
  updateEmail(id: $id, {FLAG_ARGUMENTS}) {{ {DETAIL_FIELDS} }} }}"""
MOVE = f"""mutation($id: ID!, $members: Int!, $cidUrls: Boolean!, $folder: String!) {{
  moveEmail(id: $id, folder: $folder) {{ {DETAIL_FIELDS} }} }}"""
DELETE = "mutation($id: ID!, $permanent: Boolean!) { deleteEmail(id: $id, permanent: $permanent) }"
BATCH = f"""mutation($ids: [ID!]!, $action: EmailAction!, {FLAG_VARIABLES},
  $folder: String, $permanent: Boolean!) {{
  batchEmails(ids: $ids, action: $action, {FLAG_ARGUMENTS}, folder: $folder, permanent: $permanent) {{
    id status code detail }} }}"""

BAD_GATEWAY = ("IMAP_", "SYNC_TIMEOUT", "SECRET_KEY_CHANGED")
CONFLICT = {"READ_ONLY_FOLDER", "UIDPLUS_REQUIRED"}
BUSY_RETRY_SECONDS = 5
FLAG_FIELDS: dict[str, type] = {"seen": bool, "flagged": bool, "answered": bool}
ACTIONS = ("modify", "move", "delete")


def write_error(error: dict[str, Any]) -> ApiError | None:
    """The REST answer of a failed write, beside the common ones (None: those apply)."""
    code = (error.get("extensions") or {}).get("code", "")
    body = {"detail": error["message"], "code": code}
    if code.startswith(BAD_GATEWAY):
        return ApiError(502, body)
    if code in CONFLICT:
        return ApiError(409, body)
    if code == "SERVER_BUSY":
        return ApiError(503, body, {"Retry-After": str(BUSY_RETRY_SECONDS)})
    return None


def _flag_list(body: dict[str, Any], name: str) -> list[str] | None:
    """``flags_add`` / ``flags_remove``: a list of strings, as DRF's ListField(CharField) reads it."""
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if not isinstance(value, list):
        raise ApiError(400, {name: [f'Expected a list of items but got type "{type(value).__name__}".']})
    if not all(isinstance(item, str) for item in value):
        raise ApiError(400, {name: ["Not a valid string."]})
    return value


def _flag_variables(body: dict[str, Any]) -> dict[str, Any]:
    """The flag fields of a body as GraphQL variables."""
    flags = coerce_fields(body, FLAG_FIELDS)
    return {
        **{name: flags.get(name) for name in FLAG_FIELDS},
        "flagsAdd": _flag_list(body, "flags_add"),
        "flagsRemove": _flag_list(body, "flags_remove"),
    }


def _permanent(request: Request) -> bool:
    """``?permanent=true``."""
    value = (request.query_params.get("permanent") or "").strip().lower()
    if value in ("", "false", "0", "no", "off"):
        return False
    if value in ("true", "1", "yes", "on"):
        return True
    raise ApiError(400, {"permanent": ["Must be a valid boolean."]})


@router.patch("/{email_id:int}/", response_model=None, responses={**documented(EmailDetail), **WRITE_ERRORS})
async def update_email(email_id: int, request: Request, user: CurrentUser) -> dict[str, Any]:
    """Set or clear flags on the IMAP server (``seen``, ``flagged``, ``answered``, ``flags_add``,
    ``flags_remove``; any subset), then answer the email as mirrored."""
    variables = {
        "id": str(email_id),
        "members": settings.max_thread_emails,
        "cidUrls": False,
        **_flag_variables(await read_body(request)),
    }
    data = await execute(UPDATE, variables, user=user, on_error=write_error)
    return to_rest_detail(data["updateEmail"])


@router.post(
    "/{email_id:int}/move/",
    response_model=None,
    responses={**documented(EmailDetail), 204: {}, **WRITE_ERRORS},
)
async def move_email(email_id: int, request: Request, user: CurrentUser) -> Any:
    """Move to ``folder`` on the same server: the same id; 204 when that folder is not mirrored."""
    body = await read_body(request)
    folder = body.get("folder")
    if not isinstance(folder, str) or not folder:
        raise ApiError(400, {"folder": ["This field is required." if not folder else "Not a valid string."]})
    variables = {
        "id": str(email_id),
        "members": settings.max_thread_emails,
        "cidUrls": False,
        "folder": folder,
    }
    moved = (await execute(MOVE, variables, user=user, on_error=write_error))["moveEmail"]
    return Response(status_code=204) if moved is None else to_rest_detail(moved)


@router.delete("/{email_id:int}/", status_code=204, response_model=None, responses={**ERRORS, **WRITE_ERRORS})
async def delete_email(email_id: int, request: Request, user: CurrentUser) -> Response:
    """To the server's Trash; expunged when in the Trash already or with ``?permanent=true``."""
    variables = {"id": str(email_id), "permanent": _permanent(request)}
    await execute(DELETE, variables, user=user, on_error=write_error)
    return Response(status_code=204)


@router.post("/batch/", response_model=None, responses={**ERRORS, **WRITE_ERRORS})
async def batch_emails(request: Request, user: CurrentUser) -> dict[str, Any]:
    """``{"ids": [≤ 1000], "action": "modify" | "move" | "delete", …}``: a result per id, in order."""
    body = await read_body(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApiError(400, {"ids": ["Expected a list of integers."]})
    action = body.get("action")
    if action not in ACTIONS:
        raise ApiError(400, {"action": [f'"{action}" is not a valid choice.']})
    folder = body.get("folder")
    if folder is not None and not isinstance(folder, str):
        raise ApiError(400, {"folder": ["Not a valid string."]})
    permanent = coerce_fields(body, {"permanent": bool}).get("permanent") or False
    variables = {
        "ids": [str(i) for i in ids],
        "action": action.upper(),
        **_flag_variables(body),
        "folder": folder,
        "permanent": permanent,
    }
    results = (await execute(BATCH, variables, user=user, on_error=write_error))["batchEmails"]
    return {
        "results": [
            {
                "id": int(r["id"]),
                "status": r["status"],
                **({"code": r["code"], "detail": r["detail"]} if r["code"] else {}),
            }
            for r in results
        ]
    }
