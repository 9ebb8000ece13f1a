"""The workers: Dramatiq actors (thin shells over the sync engine, the webhook sender and the search
indexer), their lanes, the scheduler, and the embedded worker of ``serve``.

Actors are plain functions, declared on a broker by ``imap2api.workers.actors.declare_actors``;
jobs for them are sent with ``imap2api.services.jobs``. Importing a worker module declares nothing.
"""
