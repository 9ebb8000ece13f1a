"""Wire-format helpers: request bodies and field types as DRF parses them, timestamps as DRF prints them."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from imap2api import nesting
from imap2api.rest.errors import ApiError

_UPPER = re.compile(r"(?<!^)([A-Z])")
_TRUE = {True, "1", "true", "True", "TRUE", "yes", "on", "t", "y"}
_FALSE = {False, "0", "false", "False", "FALSE", "no", "off", "f", "n"}


async def read_body(request: Request) -> dict[str, Any]:
    """Parse a JSON or form body into a dict, with DRF's errors for malformed input."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return dict(await request.form())
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = nesting.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # TooDeeplyNested included
        raise ApiError(400, {"detail": f"JSON parse error - {exc}"}) from exc
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ApiError(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    return data


def coerce_fields(data: dict[str, Any], types: dict[str, type]) -> dict[str, Any]:
    """Coerce the known fields of a body to int/bool/str as DRF's serializer fields would.

    Unknown fields are ignored (as DRF does); ``None`` passes through for the rules to judge.
    """
    clean: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, kind in types.items():
        if name not in data:
            continue
        value = data[name]
        if value is None:
            clean[name] = None
        elif kind is bool:
            if isinstance(value, (str, int)) and value in _TRUE:
                clean[name] = True
            elif isinstance(value, (str, int)) and value in _FALSE:
                clean[name] = False
            else:
                errors[name] = ["Must be a valid boolean."]
        elif kind is int:
            try:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                number = int(value) if not isinstance(value, str) else int(value.strip())
            except (TypeError, ValueError):
                errors[name] = ["A valid integer is required."]
            else:
                # GraphQL's Int is 32-bit; DRF's field bounds speak the same words.
                if number > 2**31 - 1:
                    errors[name] = [f"Ensure this value is less than or equal to {2**31 - 1}."]
                elif number < -(2**31):
                    errors[name] = [f"Ensure this value is greater than or equal to {-(2**31)}."]
                else:
                    clean[name] = number
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            clean[name] = str(value)
        else:
            errors[name] = ["Not a valid string."]
    if errors:
        raise ApiError(400, errors)
    return clean


def to_snake_case(name: str) -> str:
    """``imapServer`` → ``imap_server``: a GraphQL name as the REST body spells it."""
    return _UPPER.sub(r"_\1", name).lower()


def iso_z(value: str | None) -> str | None:
    """``2024-11-27T12:00:00+00:00`` → ``2024-11-27T12:00:00Z``, as DRF prints UTC."""
    if value and value.endswith("+00:00"):
        return value[:-6] + "Z"
    return value


class JSONRoute(APIRoute):
    """A route whose dict/list result is sent as is: it is JSON-ready, FastAPI's re-encoding is waste."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        status = kwargs.get("status_code") or 200

        @functools.wraps(endpoint)
        async def send_as_json(*args: Any, **values: Any) -> Any:
            result = await endpoint(*args, **values)
            return JSONResponse(result, status_code=status) if isinstance(result, (dict, list)) else result

        super().__init__(path, send_as_json, **kwargs)
