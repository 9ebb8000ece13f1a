"""The service layer: every rule of imap2api, once, for every entry point.

One module per domain (accounts, servers, sync, mail, webhooks). Each function takes a session, the
acting ``Principal`` and typed input; it checks ownership, validates, calls crud and queues jobs
with ``imap2api.services.jobs`` (sent only after the transaction commits). GraphQL resolvers (and
through them REST), the admin, the CLI and the scheduler all call these functions; no other layer
validates, checks ownership or enqueues.
"""
