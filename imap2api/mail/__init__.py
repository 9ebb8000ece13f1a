"""Pure functions over message bytes: MIME parsing, header decoding, thread keys. No I/O."""

from imap2api.mail.parse import ParsedAttachment, ParsedMessage, parse_message
from imap2api.mail.references import parse_msg_ids, thread_keys

__all__ = ["ParsedAttachment", "ParsedMessage", "parse_message", "parse_msg_ids", "thread_keys"]
