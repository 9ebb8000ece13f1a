"""Sending mail: composing, the outbox, SMTP."""
