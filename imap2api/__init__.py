"""imap2api: IMAP mailboxes mirrored into SQL, served over GraphQL and REST."""

__version__ = "0.1.0"
