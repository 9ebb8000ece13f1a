"""The fields of a model, read once for every layer that derives a shape from it.

``api_fields(ImapServerPublic)`` says, per field, its name, its base type (``int``, ``datetime``, an
enum...), whether it is a list, whether null is allowed, its default, its description and its
constraints. ``imap2api.graphql.derive`` builds the Strawberry types and inputs from this;
``imap2api.rest.shapes`` the REST selections, coercions, converters and OpenAPI models.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel


@dataclass(frozen=True)
class ApiField:
    """One field of a model, as every API layer needs to know it."""

    name: str
    base: Any  # the type without ``| None`` and ``list[...]``
    nullable: bool
    is_list: bool
    is_id: bool  # shown as an ID (GraphQL) / an integer (REST)
    required: bool  # no default: a create must give it
    default: Any  # the default value, or PydanticUndefined (none, or a factory's: timestamps)
    description: str | None
    constraints: tuple[Any, ...]  # annotated_types constraints (MaxLen, Ge, Le...)
    json_schema_extra: dict[str, Any] | None

    @property
    def enum(self) -> type[Enum] | None:
        """The enum class of an enum-typed field (or of its items)."""
        return self.base if isinstance(self.base, type) and issubclass(self.base, Enum) else None


def _unwrap(annotation: Any) -> tuple[Any, bool, bool]:
    """``list[X] | None`` → (X, nullable, is_list)."""
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is list:
        return get_args(annotation)[0], nullable, True
    return annotation, nullable, False


def api_fields(
    model: type[BaseModel],
    *,
    first: Iterable[str] = ("id",),
    ids: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> list[ApiField]:
    """The model's fields in the order the APIs show them: ``first`` ones first, then as declared.

    ``id`` and the names in ``ids`` are identifiers (GraphQL ``ID``); fields in ``exclude`` are left out.
    """
    first, skipped, id_names = list(first), set(exclude), {"id", *ids}
    names = [name for name in first if name in model.model_fields]
    names += [name for name in model.model_fields if name not in names]
    fields = []
    for name in names:
        if name in skipped:
            continue
        info = model.model_fields[name]
        base, nullable, is_list = _unwrap(info.annotation)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else None
        fields.append(
            ApiField(
                name=name,
                base=base,
                nullable=nullable,
                is_list=is_list,
                is_id=name in id_names,
                required=info.is_required(),
                default=info.default,
                description=info.description,
                constraints=tuple(
                    item for item in info.metadata if isinstance(item, annotated_types.BaseMetadata)
                ),
                json_schema_extra=extra,
            )
        )
    return fields


def field_names(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of a model's fields, in declaration order."""
    return tuple(model.model_fields)


def max_length(model: type[BaseModel], name: str) -> int | None:
    """The ``max_length`` a model declares for a field (None: unbounded)."""
    for item in model.model_fields[name].metadata:
        if isinstance(item, annotated_types.MaxLen):
            return item.max_length
    return None
