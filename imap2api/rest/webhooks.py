"""``/webhooks/``: manage webhook endpoints, read their deliveries, send a test event."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.errors import ApiError
from imap2api.rest.pagination import PAGE_PARAMETERS, page_number, page_size, paginated
from imap2api.rest.schemas import (
    ERRORS,
    WebhookCreated,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    documented,
)
from imap2api.rest.wire import JSONRoute, coerce_fields, iso_z, read_body

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=JSONRoute)

WEBHOOK_FIELDS = "id url events imapServer isActive disabledReason failingSince createdAt updatedAt"
DELIVERY_FIELDS = """id eventId eventType attempt status responseStatus responseBody error durationMs
  createdAt nextAttemptAt"""
FIELD_TYPES: dict[str, type] = {"url": str, "imap_server": int, "is_active": bool}
TO_GRAPHQL = {"imap_server": "imapServer", "is_active": "isActive"}

LIST = f"""query($page: Int!, $pageSize: Int) {{ webhooks(page: $page, pageSize: $pageSize) {{
  count page hasNext hasPrevious results {{ {WEBHOOK_FIELDS} }} }} }}"""
GET = f"query($id: ID!) {{ webhook(id: $id) {{ {WEBHOOK_FIELDS} }} }}"
CREATE = f"""mutation($input: WebhookInput!) {{ createWebhook(input: $input) {{
  secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: WebhookInput!) {{ updateWebhook(id: $id, input: $input) {{
  {WEBHOOK_FIELDS} }} }}"""
DELETE = "mutation($id: ID!) { deleteWebhook(id: $id) }"
ROTATE = f"mutation($id: ID!) {{ rotateWebhookSecret(id: $id) {{ secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"
TEST = f"mutation($id: ID!) {{ testWebhook(id: $id) {{ {DELIVERY_FIELDS} }} }}"
DELIVERIES = f"""query($id: ID!, $page: Int!, $pageSize: Int) {{
  webhookDeliveries(webhookId: $id, page: $page, pageSize: $pageSize) {{
    count page hasNext hasPrevious results {{ {DELIVERY_FIELDS} }} }} }}"""


def to_rest(webhook: dict[str, Any]) -> dict[str, Any]:
    """GraphQL Webhook → its JSON object (never with the secret)."""
    return {
        "id": int(webhook["id"]),
        "url": webhook["url"],
        "events": webhook["events"],
        "imap_server": int(webhook["imapServer"]) if webhook["imapServer"] else None,
        "is_active": webhook["isActive"],
        "disabled_reason": webhook["disabledReason"],
        "failing_since": iso_z(webhook["failingSince"]),
        "created_at": iso_z(webhook["createdAt"]),
        "updated_at": iso_z(webhook["updatedAt"]),
    }


def delivery_to_rest(delivery: dict[str, Any]) -> dict[str, Any]:
    """GraphQL WebhookDelivery → its JSON object."""
    return {
        "id": int(delivery["id"]),
        "event_id": delivery["eventId"],
        "event_type": delivery["eventType"],
        "attempt": delivery["attempt"],
        "status": delivery["status"],
        "response_status": delivery["responseStatus"],
        "response_body": delivery["responseBody"],
        "error": delivery["error"],
        "duration_ms": delivery["durationMs"],
        "created_at": iso_z(delivery["createdAt"]),
        "next_attempt_at": iso_z(delivery["nextAttemptAt"]),
    }


def _events(value: Any) -> list[str] | None:
    """``events`` off the wire: a JSON list, or a comma-separated string (form bodies)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list):
        raise ApiError(400, {"events": [f'Expected a list of items but got type "{type(value).__name__}".']})
    if not all(isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value):
        raise ApiError(400, {"events": ["Not a valid string."]})
    return [str(item) for item in value]


async def _input(request: Request) -> dict[str, Any]:
    """The request body as a GraphQL WebhookInput."""
    body = await read_body(request)
    data = coerce_fields(body, FIELD_TYPES)
    if "events" in body:
        data["events"] = _events(body["events"])
    if data.get("imap_server") is not None:
        data["imap_server"] = str(data["imap_server"])
    return {TO_GRAPHQL.get(name, name): value for name, value in data.items()}


def _with_secret(payload: dict[str, Any]) -> dict[str, Any]:
    """A webhook with the secret that is shown only in this answer."""
    return {**to_rest(payload["webhook"]), "secret": payload["secret"]}


_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookIn.model_json_schema()}},
    }
}


@router.get(
    "/", response_model=None, responses=documented(WebhookList), openapi_extra={"parameters": PAGE_PARAMETERS}
)
async def list_webhooks(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The caller's webhooks, paginated."""
    params = request.query_params
    variables = {"page": page_number(params.get("page")), "pageSize": page_size(params.get("page_size"))}
    data = (await execute(LIST, variables, user=user))["webhooks"]
    return paginated(request, data, [to_rest(webhook) for webhook in data["results"]])


@router.post(
    "/", status_code=201, response_model=None, responses=documented(WebhookCreated, 201), openapi_extra=_BODY
)
async def create_webhook(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Add a webhook. The answer carries its signing secret (``whsec_…``), shown only this once."""
    data = await execute(CREATE, {"input": await _input(request)}, user=user)
    return _with_secret(data["createWebhook"])


@router.get("/{webhook_id}/", response_model=None, responses=documented(WebhookOut))
async def get_webhook(webhook_id: str, user: CurrentUser) -> dict[str, Any]:
    """One webhook."""
    return to_rest((await execute(GET, {"id": webhook_id}, user=user))["webhook"])


async def _update(webhook_id: str, request: Request, user: Any) -> dict[str, Any]:
    """Shared by PUT and PATCH: both are partial, like the IMAP server routes."""
    data = await execute(UPDATE, {"id": webhook_id, "input": await _input(request)}, user=user)
    return to_rest(data["updateWebhook"])


@router.put("/{webhook_id}/", response_model=None, responses=documented(WebhookOut), openapi_extra=_BODY)
async def put_webhook(webhook_id: str, request: Request, user: CurrentUser) -> dict[str, Any]:
    """Change a webhook; only the fields sent change."""
    return await _update(webhook_id, request, user)


@router.patch("/{webhook_id}/", response_model=None, responses=documented(WebhookOut), openapi_extra=_BODY)
async def patch_webhook(webhook_id: str, request: Request, user: CurrentUser) -> dict[str, Any]:
    """Change a webhook; only the fields sent change."""
    return await _update(webhook_id, request, user)


@router.delete("/{webhook_id}/", status_code=204, response_class=Response, responses=ERRORS)
async def delete_webhook(webhook_id: str, user: CurrentUser) -> Response:
    """Remove a webhook and its delivery history."""
    await execute(DELETE, {"id": webhook_id}, user=user)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret/", response_model=None, responses=documented(WebhookCreated))
async def rotate_secret(webhook_id: str, user: CurrentUser) -> dict[str, Any]:
    """Replace the signing secret; the new one is in this answer only."""
    return _with_secret((await execute(ROTATE, {"id": webhook_id}, user=user))["rotateWebhookSecret"])


@router.get(
    "/{webhook_id}/deliveries/",
    response_model=None,
    responses=documented(WebhookDeliveryList),
    openapi_extra={"parameters": PAGE_PARAMETERS},
)
async def list_deliveries(webhook_id: str, request: Request, user: CurrentUser) -> dict[str, Any]:
    """Every delivery attempt of the webhook, newest first, paginated."""
    params = request.query_params
    variables = {
        "id": webhook_id,
        "page": page_number(params.get("page")),
        "pageSize": page_size(params.get("page_size")),
    }
    data = (await execute(DELIVERIES, variables, user=user))["webhookDeliveries"]
    return paginated(request, data, [delivery_to_rest(delivery) for delivery in data["results"]])


@router.post(
    "/{webhook_id}/test/", status_code=202, response_model=None, responses=documented(WebhookDeliveryOut, 202)
)
async def test_webhook(webhook_id: str, user: CurrentUser) -> JSONResponse:
    """Send a ``webhook.test`` event now; answers 202 with the queued delivery."""
    data = await execute(TEST, {"id": webhook_id}, user=user)
    return JSONResponse(delivery_to_rest(data["testWebhook"]), status_code=202)
