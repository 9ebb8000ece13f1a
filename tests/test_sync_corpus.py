"""Every real-world corpus message, delivered to Dovecot and synced: all stored, none crash a sync."""

from __future__ import annotations

import re

from tests.test_mail_corpus import MESSAGE_IDS, load

_FROM_LINE = re.compile(rb"^From [^\r\n]*\r?\n")


def test_the_whole_corpus_syncs(mirror) -> None:
    raws = [_FROM_LINE.sub(b"", load(message_id), count=1) for message_id in MESSAGE_IDS]
    mirror.dovecot.add_messages(mirror.mail_user, "INBOX", raws)
    run = mirror.sync()
    assert run.status == "success", run.error
    emails = mirror.emails()
    assert len(emails) == len(raws) == run.messages_new
    assert all(email.date is not None for email in emails)
    assert sum(1 for email in emails if email.body_text or email.body_html) > 0.9 * len(emails)
    again = mirror.sync()
    assert again.messages_new == again.messages_deleted == again.bytes_fetched == 0
