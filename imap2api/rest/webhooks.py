"""``/webhooks/``: manage webhook endpoints, read their deliveries, send a test event."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from imap2api.models import WebhookDeliveryPublic, WebhookPublic, WebhookSettings
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.errors import ApiError
from imap2api.rest.pagination import (
    PAGE_ARGUMENTS,
    PAGE_PARAMETERS,
    PAGE_VARIABLES,
)
from imap2api.rest.resource import Resource, add_resource_routes, list_page
from imap2api.rest.schemas import (
    WebhookCreated,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    documented,
)
from imap2api.rest.shapes import RestInput, RestOutput, refused
from imap2api.rest.wire import JSONRoute, coerce_fields, read_body
from imap2api.webhooks.validation import validate_webhook

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=JSONRoute)

# Derived from the models: a field added there is asked for, coerced and shown here without a change.
WEBHOOK = RestOutput(WebhookPublic, ids=("imap_server",))
DELIVERY = RestOutput(WebhookDeliveryPublic, exclude=("webhook",))
WEBHOOK_INPUT = RestInput(WebhookSettings, ids=("imap_server",))
WEBHOOK_FIELDS = WEBHOOK.selection
DELIVERY_FIELDS = DELIVERY.selection
FIELD_TYPES = WEBHOOK_INPUT.field_types
TO_GRAPHQL = WEBHOOK_INPUT.to_camel
to_rest = WEBHOOK.to_rest
delivery_to_rest = DELIVERY.to_rest

CREATE = f"""mutation($input: WebhookInput!) {{ createWebhook(input: $input) {{
  secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"""
ROTATE = f"mutation($id: ID!) {{ rotateWebhookSecret(id: $id) {{ secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"
TEST = f"mutation($id: ID!) {{ testWebhook(id: $id) {{ {DELIVERY_FIELDS} }} }}"
DELIVERIES = f"""query($id: ID!, {PAGE_VARIABLES}) {{
  webhookDeliveries(webhookId: $id, {PAGE_ARGUMENTS}) {{
    count page hasNext hasPrevious results {{ {DELIVERY_FIELDS} }} }} }}"""


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


async def _input(request: Request, user: Any, webhook_id: str | None = None) -> dict[str, Any]:
    """The request body as a GraphQL WebhookInput."""
    body = await read_body(request)
    data = coerce_fields(body, FIELD_TYPES)
    if "events" in body:
        data["events"] = _events(body["events"])
    invalid = WEBHOOK_INPUT.invalid_choices(data)
    if invalid:
        # GraphQL cannot carry an event type its enum lacks: the shared rules give the whole verdict
        # (after the webhook's lookup, so that an unknown webhook is still a 404).
        if webhook_id is not None:
            await execute(GET, {"id": webhook_id}, user=user)
        raise refused(lambda: validate_webhook(data, creating=webhook_id is None), invalid)
    return WEBHOOK_INPUT.to_graphql(data)


def _with_secret(payload: dict[str, Any]) -> dict[str, Any]:
    """A webhook with the secret that is shown only in this answer."""
    return {**to_rest(payload["webhook"]), "secret": payload["secret"]}


_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookIn.model_json_schema()}},
    }
}
DOCUMENTS = add_resource_routes(
    router,
    Resource(
        stem="webhook",
        selection=WEBHOOK_FIELDS,
        to_rest=to_rest,
        read_input=_input,
        path_id="webhook_id",
        names=("webhook", "webhooks"),
        one_model=WebhookOut,
        list_model=WebhookList,
        body=_BODY,
        docs={
            "list": "The caller's webhooks, paginated.",
            "get": "One webhook.",
            "change": "Change a webhook; only the fields sent change.",
            "delete": "Remove a webhook and its delivery history.",
        },
    ),
)
GET = DOCUMENTS["get"]


@router.post(
    "/", status_code=201, response_model=None, responses=documented(WebhookCreated, 201), openapi_extra=_BODY
)
async def create_webhook(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Add a webhook. The answer carries its signing secret (``whsec_…``), shown only this once."""
    data = await execute(CREATE, {"input": await _input(request, user)}, user=user)
    return _with_secret(data["createWebhook"])


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
    return await list_page(request, user, DELIVERIES, "webhookDeliveries", delivery_to_rest, id=webhook_id)


@router.post(
    "/{webhook_id}/test/", status_code=202, response_model=None, responses=documented(WebhookDeliveryOut, 202)
)
async def test_webhook(webhook_id: str, user: CurrentUser) -> JSONResponse:
    """Send a ``webhook.test`` event now; answers 202 with the queued delivery."""
    data = await execute(TEST, {"id": webhook_id}, user=user)
    return JSONResponse(delivery_to_rest(data["testWebhook"]), status_code=202)
