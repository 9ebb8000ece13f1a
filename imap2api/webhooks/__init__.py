"""Signed webhooks: secrets and signatures, address checks, one HTTP attempt, the outbox relay.

Nothing here knows Dramatiq: ``imap2api.workers.webhooks`` wraps the relay and the delivery step
in actors, so both run the same from a worker, the scheduler or a test.
"""
