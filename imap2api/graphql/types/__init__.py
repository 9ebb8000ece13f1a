"""GraphQL types, one module per family, each with its ``to_gql_*`` converter."""
