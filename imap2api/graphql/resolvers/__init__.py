"""Query and Mutation mixins, combined in ``imap2api.graphql.schema``."""
