"""Strawberry types and inputs derived from the models' fields (``imap2api.models``), never re-declared.

::

    @derive.output_type(ImapServerPublic, name="ImapServer")
    class ImapServerType:
        \"\"\"An IMAP account being mirrored.\"\"\"

fills the class with one field per model field (same order, type, nullability and description;
``id`` and the ``ids`` as ``ID``; enums as GraphQL enums named after the ``StrEnum``) and makes it a
Strawberry type. ``input_type`` does the same for an input whose every field is optional with
``strawberry.UNSET`` as its default, so that an absent field and an explicit null stay apart.
``to_gql(ImapServerType, row)`` builds the type from a table row; ``given_fields(input)`` reads back
what an input carried, enums as their values, as the rules and crud expect them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar, cast

import strawberry
from pydantic import BaseModel

from imap2api.fields import ApiField, api_fields

T = TypeVar("T")
E = TypeVar("E", bound=Enum)

# Where a field's value comes from on the row: an attribute name, or a function of the row.
Source = str | Callable[[Any], Any]


def gql_enum(enum: type[E]) -> type[E]:
    """The enum as a GraphQL enum (named after the class, described by its docstring), registered once."""
    if not hasattr(enum, "_enum_definition"):
        strawberry.enum(enum, name=enum.__name__, description=(enum.__doc__ or "").strip() or None)
    return enum


def _gql_type(field: ApiField, *, override: Any = None, optional: bool = False) -> Any:
    """The Python annotation Strawberry reads for a field."""
    base = override if override is not None else field.base
    if field.is_id:
        base = strawberry.ID
    elif field.enum is not None:
        base = gql_enum(field.enum)
    annotation: Any = list[base] if field.is_list else base  # type: ignore[valid-type]
    return annotation | None if field.nullable or optional else annotation


@dataclass(frozen=True)
class _Reader:
    """How one GraphQL field is read off a row."""

    name: str
    get: Callable[[Any], Any]
    convert: Callable[[Any], Any] | None


def _converter(field: ApiField) -> Callable[[Any], Any] | None:
    """Row value → GraphQL value: ids to ``ID``, stored strings to enum members; None if as is."""
    one: Callable[[Any], Any]
    if field.is_id:
        one = lambda value: strawberry.ID(str(value))  # noqa: E731
    elif field.enum is not None:
        one = field.enum
    else:
        return None
    if field.is_list:
        return lambda values: [one(value) for value in values]
    return lambda value: None if value is None else one(value)


def output_type(
    model: type[BaseModel],
    *,
    name: str,
    first: Iterable[str] = ("id",),
    ids: Iterable[str] = (),
    exclude: Iterable[str] = (),
    types: Mapping[str, Any] | None = None,
    sources: Mapping[str, Source] | None = None,
) -> Callable[[type[T]], type[T]]:
    """A class decorator: the class becomes the Strawberry type ``name`` with the model's fields.

    ``types`` overrides a field's Python type (``bytes_fetched: float``: beyond GraphQL's 32-bit Int;
    the row's value is then given as is);
    ``sources`` says where ``to_gql`` reads a field whose row attribute has another name or form.
    Fields the class declares itself (with resolvers, say) are kept and come after the derived ones.
    """
    fields = api_fields(model, first=first, ids=ids, exclude=exclude)
    overrides, where = dict(types or {}), dict(sources or {})

    def decorate(cls: type[T]) -> type[T]:
        own = dict(cls.__dict__.get("__annotations__", {}))
        annotations: dict[str, Any] = {}
        readers = []
        for field in fields:
            annotations[field.name] = _gql_type(field, override=overrides.get(field.name))
            setattr(cls, field.name, strawberry.field(description=field.description))
            source = where.get(field.name, field.name)
            get = source if callable(source) else _attribute(source)
            convert = None if field.name in overrides else _converter(field)
            readers.append(_Reader(field.name, get, convert))
        cls.__annotations__ = {**annotations, **own}
        cls.__gql_readers__ = tuple(readers)  # type: ignore[attr-defined]
        return strawberry.type(cls, name=name)

    return decorate


def _attribute(name: str) -> Callable[[Any], Any]:
    """``row.<name>``."""
    return lambda row: getattr(row, name)


def to_gql(cls: type[T], row: Any, **extra: Any) -> T:
    """The derived type ``cls`` filled from a table row (``extra``: fields the class adds itself)."""
    values = dict(extra)
    for reader in cls.__gql_readers__:  # type: ignore[attr-defined]
        value = reader.get(row)
        values[reader.name] = value if reader.convert is None else reader.convert(value)
    return cast("Callable[..., T]", cls)(**values)


def input_type(
    model: type[BaseModel],
    *,
    name: str,
    first: Iterable[str] = (),
    ids: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Callable[[type[T]], type[T]]:
    """A class decorator: the class becomes the Strawberry input ``name`` with the model's fields.

    Every field is optional and defaults to ``strawberry.UNSET``: on update only the given ones change,
    and ``given_fields`` tells a field left out from one sent as null.
    """
    fields = api_fields(model, first=first, ids=ids, exclude=exclude)

    def decorate(cls: type[T]) -> type[T]:
        cls.__annotations__ = {field.name: _gql_type(field, optional=True) for field in fields}
        for field in fields:
            setattr(
                cls, field.name, strawberry.field(default=strawberry.UNSET, description=field.description)
            )
        return strawberry.input(cls, name=name)

    return decorate


def _plain(value: Any) -> Any:
    """An enum member (or a list of them) as its value; anything else as is."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [item.value if isinstance(item, Enum) else item for item in value]
    return value


def given_fields(data: Any) -> dict[str, Any]:
    """The fields of an input object that were actually given (null included), enums as their values."""
    return {name: _plain(value) for name, value in vars(data).items() if value is not strawberry.UNSET}
