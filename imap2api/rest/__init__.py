"""The REST compatibility layer: apidoc.md on the wire, each route one GraphQL operation."""
