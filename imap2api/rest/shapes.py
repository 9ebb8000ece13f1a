"""The REST shapes of a resource, derived from its models (``imap2api.models``) like the GraphQL types.

``RestOutput(ImapServerPublic)`` gives the GraphQL selection a route asks for and ``to_rest``, which
turns the GraphQL answer into the apidoc object: camelCase → snake_case, ``ID`` → int, timestamps
as DRF prints them, GraphQL enum names → the lower-case (dotted) values. ``RestInput(ImapServerCreate)``
gives the DRF coercion table (``field_types``), the snake → camel map and ``to_graphql``, which
turns a request body into the GraphQL input (enum values → names). ``openapi_model`` builds the
pydantic models /openapi.json shows, enums inline as ``enum`` lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, create_model
from pydantic import Field as PydanticField
from pydantic_core import PydanticUndefined
from strawberry.utils.str_converters import to_camel_case

from imap2api.errors import ValidationFailed
from imap2api.fields import ApiField, api_fields
from imap2api.rest.errors import ApiError
from imap2api.rest.wire import iso_z

# Python type → the DRF field type ``coerce_fields`` applies to the body's value.
_COERCED = {bool: bool, int: int, str: str}
M = TypeVar("M", bound=BaseModel)


def _rest_converter(field: ApiField) -> Callable[[Any], Any] | None:
    """GraphQL value → REST value for one field (None: as is)."""
    one: Callable[[Any], Any]
    if field.is_id:
        one = int
    elif field.base is datetime:
        return iso_z
    elif field.enum is not None:
        one = {member.name: member.value for member in field.enum}.__getitem__
    else:
        return None
    if field.is_list:
        return lambda values: [one(value) for value in values]
    return lambda value: None if value is None else one(value)


class RestOutput:
    """How a resource's GraphQL object is asked for and shown over REST."""

    def __init__(
        self,
        model: type[BaseModel],
        *,
        first: Iterable[str] = ("id",),
        ids: Iterable[str] = (),
        exclude: Iterable[str] = (),
        plain: Iterable[str] = (),
    ) -> None:
        """``plain``: fields GraphQL shows as they are stored (no enum there), for all their model type."""
        self.fields = api_fields(model, first=first, ids=ids, exclude=exclude)
        as_is = set(plain)
        self._readers = [
            (to_camel_case(field.name), field.name, None if field.name in as_is else _rest_converter(field))
            for field in self.fields
        ]
        self.selection = " ".join(camel for camel, _, _ in self._readers)

    def to_rest(self, data: dict[str, Any]) -> dict[str, Any]:
        """A GraphQL object (with ``selection``) → the REST JSON object."""
        return {
            snake: data[camel] if convert is None else convert(data[camel])
            for camel, snake, convert in self._readers
        }


class RestInput:
    """How a request body becomes a resource's GraphQL input."""

    def __init__(self, model: type[BaseModel], *, ids: Iterable[str] = ()) -> None:
        """``ids``: fields given as integers over REST and as ``ID`` to GraphQL."""
        self.fields = api_fields(model, first=(), ids=ids)
        self.field_types: dict[str, type] = {
            field.name: int if field.is_id else _COERCED.get(field.base, str)
            for field in self.fields
            if not field.is_list
        }
        self.to_camel = {field.name: to_camel_case(field.name) for field in self.fields}
        self._ids = [field.name for field in self.fields if field.is_id]
        self._enums = {field.name: field.enum for field in self.fields if field.enum is not None}

    def invalid_choices(self, data: dict[str, Any]) -> dict[str, list[str]]:
        """DRF's messages for the body's enum values that are no choice (GraphQL could not take them)."""
        errors: dict[str, list[str]] = {}
        for name, enum in self._enums.items():
            value = data.get(name)
            values = value if isinstance(value, list) else [value]
            choices = {member.value for member in enum}
            bad = [
                f'"{item}" is not a valid choice.'
                for item in values
                if item is not None and item not in choices
            ]
            if bad:
                errors[name] = bad
        return errors

    def to_graphql(self, data: dict[str, Any]) -> dict[str, Any]:
        """Coerced body fields (enum values all valid) → the GraphQL input: camelCase, enum names, IDs."""
        result: dict[str, Any] = {}
        for name, value in data.items():
            enum = self._enums.get(name)
            if value is None:
                pass
            elif enum is not None:
                value = [enum(item).name for item in value] if isinstance(value, list) else enum(value).name
            elif name in self._ids:
                value = str(value)
            result[self.to_camel.get(name, name)] = value
        return result


def _openapi_type(field: ApiField) -> Any:
    """The annotation of a field in an OpenAPI model: enums as a ``Literal`` of their values."""
    base: Any = int if field.is_id else field.base
    if field.enum is not None:
        base = Literal[tuple(member.value for member in field.enum)]
    elif field.constraints:
        base = Annotated[base, *field.constraints]
    annotation: Any = list[base] if field.is_list else base
    return annotation | None if field.nullable else annotation


def openapi_model(
    model: type[BaseModel],
    *,
    first: Iterable[str] = ("id",),
    ids: Iterable[str] = (),
    exclude: Iterable[str] = (),
    output: bool = False,
) -> Callable[[type[M]], type[M]]:
    """A class decorator: the class (a BaseModel) gets the model's fields, for /openapi.json.

    Names, order, types, bounds and descriptions come from ``model``; enums are inline ``enum`` lists
    of their values. ``output``: every field is required (an answer always carries it) and defaults
    are not shown. The class keeps its name and docstring (the schema's description).
    """
    definitions: dict[str, Any] = {}
    for field in api_fields(model, first=first, ids=ids, exclude=exclude):
        default = PydanticUndefined if output else field.default
        if isinstance(default, Enum):
            default = default.value
        elif isinstance(default, list):
            default = [item.value if isinstance(item, Enum) else item for item in default]
        info = PydanticField(
            default, description=field.description, json_schema_extra=field.json_schema_extra
        )
        definitions[field.name] = (_openapi_type(field), info)

    def decorate(cls: type[M]) -> type[M]:
        derived = create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **definitions)
        derived.__doc__ = cls.__doc__
        return derived

    return decorate


def refused(rule: Callable[[], Any], invalid: dict[str, list[str]]) -> ApiError:
    """The 400 for a body with a value no enum holds: the shared rule's whole verdict on the body.

    ``rule`` runs the validation the resolver would have run (it names the bad choice too, among the
    body's other faults); ``invalid`` is the answer should it find nothing.
    """
    try:
        rule()
    except ValidationFailed as exc:
        return ApiError(400, exc.fields)
    return ApiError(400, invalid)
