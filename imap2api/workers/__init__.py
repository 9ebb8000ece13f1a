"""Dramatiq actors: thin shells over the sync engine and the webhook sender.

Import ``imap2api.workers.actors`` to declare them; ``broker`` is imported first so every
actor binds to the broker the configuration asks for.
"""
