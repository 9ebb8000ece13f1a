"""The cost limit: an operation's estimated result size, refused before execution when too large.

The estimate counts the values an answer would hold. Every selected field is one value; a field
returning a list multiplies its selection by how many items the list can hold:

- a field declared with ``list_size`` (``limit`` arguments): the argument, else its default,
  never above its maximum;
- a field with a ``pageSize`` argument returns a page whose ``results`` hold that many (the
  default page size when unset, never above ``MAX_PAGE_SIZE``);
- introspection lists: the schema's own numbers (how many types, fields per type on average);
- any other list (bounded by the data, e.g. folder counts): ``DEFAULT_LIST_SIZE``.

Aliases count as the fields they are; fragments and inline fragments count wherever they are
spread (each fragment is estimated once per place type, so the estimate takes linear time);
arguments given as variables use the variables' values, or their defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    value_from_ast_untyped,
)
from graphql.pyutils import Undefined
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from imap2api.config import settings
from imap2api.services.paging import page_size as list_page_size

DEFAULT_LIST_SIZE = 20
CODE = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True)
class ListSize:
    """How many items a list field returns: its ``argument``, else ``default()``, at most ``maximum()``."""

    argument: str
    default: Callable[[], int]
    maximum: Callable[[], int]

    def clamp(self, value: object) -> int:
        """The size for an argument value: the default when unset or below 1, never above the maximum."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            value = self.default()
        return max(1, min(value, self.maximum()))

    @property
    def metadata(self) -> dict[str, ListSize]:
        """The ``metadata=`` of a strawberry field, where the estimate finds this bound."""
        return {"list_size": self}


def _list_size_of(field: GraphQLField) -> ListSize | None:
    """The ``ListSize`` a strawberry field declared, if any."""
    definition = (field.extensions or {}).get("strawberry-definition")
    metadata = getattr(definition, "metadata", None) or {}
    return metadata.get("list_size")


@cache
def _introspection_sizes(schema: GraphQLSchema) -> dict[str, int]:
    """Lengths of the introspection lists of ``schema``, on average over all its types (once per schema).

    An average over all types, not over those having the list: ``__Type.fields`` is null for the
    scalars, enums and inputs, and the estimate should add up to about the schema's real size.
    """
    types = list(schema.type_map.values())
    with_fields = [kind for kind in types if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType)]
    fields = [field for kind in with_fields for field in kind.fields.values()]
    inputs = [kind for kind in types if isinstance(kind, GraphQLInputObjectType)]
    enums = [kind for kind in types if isinstance(kind, GraphQLEnumType)]
    abstract = [kind for kind in types if isinstance(kind, GraphQLInterfaceType | GraphQLUnionType)]

    def per(total: int, count: int) -> int:
        return math.ceil(total / count) if count else 0

    return {
        "types": len(types),
        "fields": per(len(fields), len(types)),
        "args": per(sum(len(field.args) for field in fields), len(fields)),
        "inputFields": per(sum(len(kind.fields) for kind in inputs), len(types)),
        "enumValues": per(sum(len(kind.values) for kind in enums), len(types)),
        "interfaces": per(sum(len(kind.interfaces) for kind in with_fields), len(types)),
        "possibleTypes": per(sum(len(schema.get_possible_types(kind)) for kind in abstract), len(types)),
        "directives": len(schema.directives),
    }


class CostEstimate:
    """The estimated result size of one operation of a document, with the given variables."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = dict(variables)
        self._memo: dict[tuple[str, int | None], int] = {}

    def selection_set(self, node: SelectionSetNode, parent: GraphQLNamedType, page_size: int | None) -> int:
        """The values one object of type ``parent`` holds for this selection."""
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page_size)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, kind or parent, page_size)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page_size)
        return total

    def fragment(self, name: str, page_size: int | None) -> int:
        """A named fragment's values, estimated once per page size however often it is spread."""
        fragment = self.fragments.get(name)
        if fragment is None:
            return 0
        key = (name, page_size)
        if key not in self._memo:
            self._memo[key] = 0  # validation refused cycles already; this only guards the recursion
            kind = self.schema.get_type(fragment.type_condition.name.value)
            self._memo[key] = self.selection_set(fragment.selection_set, kind, page_size) if kind else 0
        return self._memo[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType, page_size: int | None) -> int:
        """One field: itself, plus its selection times the items it can return."""
        definition = self._definition(parent, node.name.value)
        if definition is None or node.selection_set is None:
            return 1  # a scalar, an enum, or a list of them: one value
        items = 1
        if is_list_type(get_nullable_type(definition.type)):
            items = self._list_size(node, parent, definition, page_size)
        inner_page = None
        if "pageSize" in definition.args:
            value = self._argument(node, "pageSize")
            inner_page = list_page_size(value if isinstance(value, int) else None)
        return 1 + items * self.selection_set(node.selection_set, get_named_type(definition.type), inner_page)

    def _definition(self, parent: GraphQLNamedType, name: str) -> GraphQLField | None:
        """The field ``name`` of ``parent``, meta fields included."""
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is self.schema.query_type and name in ("__schema", "__type"):
            return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
        return getattr(parent, "fields", {}).get(name)

    def _list_size(
        self, node: FieldNode, parent: GraphQLNamedType, definition: GraphQLField, page_size: int | None
    ) -> int:
        """How many items a list field can return."""
        declared = _list_size_of(definition)
        if declared is not None:
            return declared.clamp(self._argument(node, declared.argument))
        if node.name.value == "results" and page_size is not None:
            return page_size
        if parent.name.startswith("__"):
            return _introspection_sizes(self.schema).get(node.name.value, DEFAULT_LIST_SIZE)
        return DEFAULT_LIST_SIZE

    def _argument(self, node: FieldNode, name: str) -> Any:
        """An argument's value as given (a literal, or a variable's value), None when absent."""
        for argument in node.arguments or ():
            if argument.name.value == name:
                value = value_from_ast_untyped(argument.value, self.variables)
                return None if value is Undefined else value
        return None


def estimate_cost(
    schema: GraphQLSchema, document: Any, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    """The estimated number of values the answer to ``document``'s operation would hold."""
    operation: OperationDefinitionNode | None = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    values = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    values.update(variables or {})
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    return CostEstimate(schema, fragments, values).selection_set(operation.selection_set, root, None)


def too_complex(cost: int, limit: int) -> GraphQLError:
    """The error that refuses an operation estimated above the limit."""
    return GraphQLError(
        f"Query is too complex: its result is estimated at {cost} values, more than the limit of {limit} "
        "(IMAP2API_GRAPHQL_MAX_COST). Select fewer fields, or ask for smaller pages and limits.",
        extensions={"code": CODE, "cost": cost, "maxCost": limit},
    )


class QueryCostLimiter(SchemaExtension):
    """Schema extension refusing, before execution, operations estimated above ``GRAPHQL_MAX_COST``."""

    def on_execute(self) -> Iterator[None]:
        """Estimate the validated operation; raising here answers with the error alone."""
        context = self.execution_context
        limit = settings.graphql_max_cost
        if limit > 0 and context.graphql_document is not None:
            schema = context.schema._schema  # the graphql-core schema behind strawberry's
            document, name = context.graphql_document, context.operation_name
            try:
                cost = estimate_cost(schema, document, name, context.variables)
            except RecursionError:  # introspection may nest past the depth limit; that is no small query
                cost = limit + 1
            if cost > limit:
                raise too_complex(cost, limit)
        yield
