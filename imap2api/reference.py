"""Reference documents generated from the live code: the GraphQL SDL and a REST summary of /openapi.json.

`imap2api docs DIR` writes them; a test checks the committed copies are current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


def graphql_sdl() -> str:
    """The schema in SDL, as served."""
    from imap2api.graphql.schema import schema

    return str(schema).rstrip() + "\n"


def _schema_name(schema: dict[str, Any]) -> str:
    """A short name for a JSON schema (its $ref target, or its type)."""
    if "$ref" in schema:
        ref: str = schema["$ref"]
        return ref.rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list[{_schema_name(schema.get('items', {}))}]"
    name: str = schema.get("title") or schema.get("type", "object")
    return name


def rest_markdown() -> str:
    """A Markdown table of every REST operation in /openapi.json, with its parameters and answers."""
    from imap2api.app import create_app

    spec = create_app(run_worker=False).openapi()
    lines = [
        "# REST reference",
        "",
        "Generated from `/openapi.json` by `imap2api docs docs/` (do not edit by hand). Every route under",
        "`/api/` is also served under `/api/v1/`; the interactive version is at `/docs`. All but",
        '`/api-token-auth/` need `Authorization: Token <key>`. Errors are DRF-shaped: `{"detail": ...}`',
        '(401, 404, 405, 413, 429, 5xx) or `{"field": ["message"]}` (400). As in DRF, every route',
        "also answers `OPTIONS` (`name`, `description`, `renders`, `parses`) and `HEAD` where it answers",
        "`GET`, and a 405's `Allow` lists every method of the resource. Lists take `page` (1 and up, or",
        '`last`; anything else is `404 {"detail": "Invalid page."}`) and `page_size`.',
        "",
        "| method | path | summary | parameters | request body | answers |",
        "|---|---|---|---|---|---|",
    ]
    for path, operations in spec["paths"].items():
        if path.startswith("/api/v1/"):
            continue
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            params = ", ".join(
                f"`{p['name']}`" for p in operation.get("parameters", []) if p.get("in") in ("query", "path")
            )
            body = operation.get("requestBody", {}).get("content", {})
            body_name = ", ".join(sorted({_schema_name(media.get("schema", {})) for media in body.values()}))
            answers = []
            for status, response in sorted(operation.get("responses", {}).items()):
                content = response.get("content", {}).get("application/json", {})
                model = _schema_name(content["schema"]) if content.get("schema") else ""
                answers.append(f"{status} {model}".strip())
            summary = (operation.get("summary") or "").replace("|", "\\|")
            lines.append(
                f"| {method.upper()} | `{path}` | {summary} | {params or '-'} | {body_name or '-'} "
                f"| {'; '.join(answers)} |"
            )
    schemas = spec.get("components", {}).get("schemas", {})
    lines += ["", "## Bodies", ""]
    for name, schema in sorted(schemas.items()):
        if name in ("HTTPValidationError", "ValidationError"):
            continue
        properties = schema.get("properties", {})
        if not properties:
            continue
        fields = ", ".join(f"`{field}`" for field in properties)
        lines.append(f"- **{name}**: {schema.get('description', '').strip()} Fields: {fields}.")
    return "\n".join(lines) + "\n"


def write_reference(directory: Path) -> list[Path]:
    """Write schema.graphql and rest.md into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("schema.graphql", graphql_sdl()), ("rest.md", rest_markdown())):
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
