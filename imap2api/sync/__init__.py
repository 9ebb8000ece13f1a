"""The sync engine: mirrors one IMAP server into the database. Knows nothing of Dramatiq or HTTP."""
