"""The imapclient internals imap2api.sync.imap relies on, pinned against a scripted IMAP server.

imapclient has no public way to send the few commands the sync needs beyond its methods (see the
end of imap2api/sync/imap.py). These tests drive the real imapclient and imaplib over a socket
and check the exact bytes sent and what comes back, so an imapclient release that changes those
internals fails here. No Dovecot: each test scripts its server's answers.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from imap2api.sync.credentials import imap_login_argument
from imap2api.sync.imap import (
    examine_qresync,
    fetched_by_uid,
    imaplib_connection,
    login_with_literals,
    pop_untagged,
    uid_fetch,
)

Answer = Callable[[str, bytes], list[bytes]]  # (tag, command line) -> response lines
LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class ScriptedServer:
    """One IMAP connection on 127.0.0.1, answered by ``answers`` (first matching prefix wins)."""

    def __init__(self, answers: dict[bytes, Answer]) -> None:
        self.answers = {
            b"CAPABILITY": ok(b"* CAPABILITY IMAP4rev1 ENABLE CONDSTORE QRESYNC"),
            b"LOGIN": ok(),
            **answers,
        }
        self.commands: list[bytes] = []  # each command as sent, literals included, without its tag
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection, connection.makefile("rb") as reader:
            connection.sendall(b"* OK [CAPABILITY IMAP4rev1] scripted\r\n")
            while True:
                line = reader.readline()
                if not line:
                    return
                while match := LITERAL.search(line):  # a synchronising literal: ask for it, then read on
                    connection.sendall(b"+ go on\r\n")
                    line += reader.read(int(match.group(1)))
                    line += reader.readline()
                tag, _, command = line.rstrip(b"\r\n").partition(b" ")
                self.commands.append(command)
                if command == b"LOGOUT":
                    connection.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                    return
                answer = next((a for p, a in self.answers.items() if command.upper().startswith(p)), None)
                lines = answer(tag.decode(), command) if answer else [b"%s BAD unscripted" % tag]
                connection.sendall(b"".join(item + b"\r\n" for item in lines))

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)


def ok(*untagged: bytes, text: bytes = b"done") -> Answer:
    """An answer of ``untagged`` lines, then the tagged OK."""
    return lambda tag, _: [*untagged, tag.encode() + b" OK " + text]


def no(text: bytes = b"not today") -> Answer:
    return lambda tag, _: [tag.encode() + b" NO " + text]


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[IMAPClient, ScriptedServer]]]:
    """Start a scripted server and connect to it; logged in (by the public ``login``) unless told not to."""
    opened: list[tuple[IMAPClient, ScriptedServer]] = []

    def start(answers: dict[bytes, Answer], *, login: bool = True) -> tuple[IMAPClient, ScriptedServer]:
        server = ScriptedServer(answers)
        client = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=5)
        opened.append((client, server))
        if login:
            client.login("user", "password")
        return client, server

    yield start
    for client, server in opened:
        client.shutdown()
        server.close()


EXAMINE_ANSWER = [
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    b"* OK [PERMANENTFLAGS ()] Read-only mailbox.",
    b"* 3 EXISTS",
    b"* 0 RECENT",
    b"* OK [UIDVALIDITY 7] UIDs valid",
    b"* OK [UIDNEXT 11] Predicted next UID",
    b"* OK [HIGHESTMODSEQ 45] Highest",
]
QRESYNC_EXTRA = [b"* VANISHED (EARLIER) 1:2,5", b"* 1 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (44))"]


def selected(client: IMAPClient) -> IMAPClient:
    """``client`` with a folder selected (FETCH is only allowed then), by the public select_folder."""
    client.select_folder("INBOX", readonly=True)
    return client


def test_uid_fetch_sends_a_uid_set_with_modifiers_and_keeps_only_uid_keyed_responses(serve) -> None:
    answers = {
        b"EXAMINE": ok(*EXAMINE_ANSWER),
        b"UID FETCH": ok(
            b"* 1 FETCH (UID 10 FLAGS (\\Seen))",
            b"* 2 FETCH (FLAGS (\\Flagged))",  # unsolicited, no UID: not UID 2
            b"* 3 FETCH (FLAGS () UID 12)",
        ),
    }
    client, server = serve(answers)
    fetched = uid_fetch(selected(client), "1:3,7,10:*", ["FLAGS"], ["CHANGEDSINCE 5"])
    assert server.commands[-1] == b"UID FETCH 1:3,7,10:* (FLAGS) (CHANGEDSINCE 5)"
    assert fetched == {
        10: {b"SEQ": 1, b"UID": 10, b"FLAGS": (b"\\Seen",)},
        12: {b"SEQ": 3, b"UID": 12, b"FLAGS": ()},
    }
    assert uid_fetch(client, "4", ["RFC822.SIZE"]) is not None
    assert server.commands[-1] == b"UID FETCH 4 (RFC822.SIZE)"
    assert uid_fetch(client, "", ["FLAGS"]) == {}  # nothing asked: nothing sent
    assert server.commands[-1] == b"UID FETCH 4 (RFC822.SIZE)"


def test_uid_fetch_fails_as_imapclient_fetch_fails(serve) -> None:
    client, _ = serve({b"EXAMINE": ok(*EXAMINE_ANSWER), b"UID FETCH": no(b"[SERVERBUG] oops")})
    with pytest.raises(IMAPClientError) as ours:
        uid_fetch(selected(client), "1:*", ["FLAGS"])
    with pytest.raises(IMAPClientError) as theirs:
        client.fetch([1], ["FLAGS"])
    assert str(ours.value) == str(theirs.value) == "fetch failed: [SERVERBUG] oops"


def test_uid_fetch_of_nothing_found(serve) -> None:
    client, _ = serve({b"EXAMINE": ok(*EXAMINE_ANSWER), b"UID FETCH": ok()})
    assert uid_fetch(selected(client), "1:*", ["FLAGS"]) == {}


def test_examine_qresync_sends_the_parameter_and_reads_the_answer_as_select_folder(serve) -> None:
    client, server = serve({b"EXAMINE": ok(*EXAMINE_ANSWER, *QRESYNC_EXTRA, text=b"[READ-ONLY] done")})
    info = examine_qresync(client, 'Entwürfe "x"', uidvalidity=7, highestmodseq=40)
    assert server.commands[-1] == b'EXAMINE "Entw&APw-rfe \\"x\\"" (QRESYNC (7 40))'
    imap = imaplib_connection(client)
    assert (imap.state, imap.is_readonly) == ("SELECTED", True)
    assert pop_untagged(client, "VANISHED") == [b"(EARLIER) 1:2,5"]
    assert fetched_by_uid(pop_untagged(client, "FETCH"), client.normalise_times) == {
        3: {b"SEQ": 1, b"UID": 3, b"FLAGS": (b"\\Seen",), b"MODSEQ": (44,)}
    }
    assert pop_untagged(client, "VANISHED") == []  # taken
    # The same answer read by the public select_folder gives the same dict.
    assert info == client.select_folder('Entwürfe "x"', readonly=True)
    assert server.commands[-1] == b'EXAMINE "Entw&APw-rfe \\"x\\""'
    assert info is not None and info[b"UIDNEXT"] == 11 and info[b"HIGHESTMODSEQ"] == 45


def test_examine_qresync_flushes_older_untagged_responses(serve) -> None:
    client, _ = serve({b"EXAMINE": ok(*EXAMINE_ANSWER), b"NOOP": ok(b"* VANISHED 9")})
    client.noop()
    assert examine_qresync(client, "INBOX", uidvalidity=7, highestmodseq=40) is not None
    assert pop_untagged(client, "VANISHED") == []


def test_examine_qresync_refused(serve) -> None:
    client, _ = serve({b"EXAMINE": no(b"[NONEXISTENT] gone")})
    assert examine_qresync(client, "Gone", uidvalidity=7, highestmodseq=40) is None
    assert imaplib_connection(client).state == "AUTH"


def test_login_with_literals_sends_strings_and_literals_and_then_rereads_capabilities(serve) -> None:
    answers = {
        b"NOOP": ok(b"* CAPABILITY IMAP4rev1 BEFORELOGIN"),
        b"LOGIN": ok(text=b"logged in"),
    }
    client, server = serve(answers, login=False)
    client.noop()
    assert client.has_capability("BEFORELOGIN")  # cached from the untagged CAPABILITY
    arguments = [imap_login_argument('us"er'), imap_login_argument("pässwörd\x01")]
    typ, data = login_with_literals(client, arguments)
    assert (typ, data) == ("OK", [b"logged in"])
    assert server.commands[-1] == b'LOGIN "us\\"er" {11}\r\n' + "pässwörd\x01".encode()
    assert imaplib_connection(client).state == "AUTH"
    # The cache is gone: asked again, in the authenticated state.
    assert client.has_capability("QRESYNC")
    assert not client.has_capability("BEFORELOGIN")
    assert server.commands[-1] == b"CAPABILITY"


def test_login_with_literals_refused(serve) -> None:
    client, _ = serve({b"LOGIN": no(b"[AUTHENTICATIONFAILED] no")}, login=False)
    typ, data = login_with_literals(client, [imap_login_argument("u"), imap_login_argument("p")])
    assert (typ, data) == ("NO", [b"[AUTHENTICATIONFAILED] no"])
    assert imaplib_connection(client).state == "NONAUTH"
