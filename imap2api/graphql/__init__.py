"""The GraphQL interface: the primary API, which the REST layer runs its operations through."""
