"""GraphQL reads of synced mail: lists, search, threads, details, folders, statistics, ownership."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from imap2api.crud import emails as crud_emails
from imap2api.db import get_engine
from imap2api.workers.search_index import index_all_pending
from tests.support.messages import make_message


def gql(client, headers, query: str, **variables):
    """Run a GraphQL query and return the whole response body."""
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers).json()


def day(number: int) -> datetime:
    return datetime(2024, 11, number, 12, 0, tzinfo=UTC)


@pytest.fixture()
def mailbox(mirror):
    """A synced mailbox with threads, attachments, folders and flags."""
    mirror.deliver(
        make_message(
            subject="Lighthouse tour",
            sender="Ann <ann@example.com>",
            date=day(1),
            message_id="<t1@x>",
            body="Meet at the pier.",
        )
    )
    mirror.deliver(
        make_message(
            subject="Re: Lighthouse tour",
            sender="Bob <bob@example.org>",
            date=day(2),
            message_id="<t2@x>",
            in_reply_to="<t1@x>",
            references=["<t1@x>"],
            body="I'll bring the camera.",
        ),
        flags="S",
    )
    mirror.deliver(
        make_message(
            subject="Re: Lighthouse tour",
            sender="Ann <ann@example.com>",
            date=day(3),
            message_id="<t3@x>",
            in_reply_to="<t2@x>",
            references=["<t1@x>", "<t2@x>"],
            body="Great!",
        ),
        folder="Sent",
        flags="S",
    )
    mirror.deliver(
        make_message(
            subject="Grüße aus München",
            sender="Jörg <joerg@example.de>",
            date=day(4),
            message_id="<m1@x>",
            body="Bis bald in München.",
            attachments=[("plan.pdf", "application/pdf", b"%PDF-1.4 plan")],
        ),
        flags="F",
    )
    mirror.deliver(
        make_message(
            subject="Invoice 42",
            sender="billing@shop.example",
            to="me@example.com",
            date=day(5),
            message_id="<i1@x>",
            body="Total: 42 EUR",
        )
    )
    mirror.deliver(
        make_message(
            subject="Lighthouse tour",
            sender="Zed <zed@example.net>",
            date=day(6),
            message_id="<other@x>",
            body="Unrelated lighthouse, same subject.",
        )
    )
    assert mirror.sync().status == "success"
    return mirror


LIST = """query($q: String, $folder: String, $thread: Boolean! = false, $ordering: String, $page: Int! = 1,
                $pageSize: Int, $lastPage: Boolean! = false, $dateFrom: Date, $dateTo: Date, $server: ID) {
  emails(q: $q, folder: $folder, thread: $thread, ordering: $ordering, page: $page, pageSize: $pageSize,
         lastPage: $lastPage, dateFrom: $dateFrom, dateTo: $dateTo, imapServer: $server) {
    count page pageSize hasNext hasPrevious results { id subject sender folder threadId threadCount date }
  }
}"""


def subjects(body) -> list[str]:
    return [row["subject"] for row in body["data"]["emails"]["results"]]


def test_list_defaults_to_newest_first(client, mailbox) -> None:
    page = gql(client, mailbox.headers, LIST)["data"]["emails"]
    assert page["count"] == 6 and page["page"] == 1 and page["pageSize"] == 50
    assert not page["hasNext"] and not page["hasPrevious"]
    assert [row["date"] for row in page["results"]] == sorted(
        (row["date"] for row in page["results"]), reverse=True
    )


def test_pagination_and_ordering(client, mailbox) -> None:
    first = gql(client, mailbox.headers, LIST, pageSize=4, ordering="subject")["data"]["emails"]
    second = gql(client, mailbox.headers, LIST, pageSize=4, page=2, ordering="subject")["data"]["emails"]
    assert first["hasNext"] and not first["hasPrevious"] and second["hasPrevious"] and not second["hasNext"]
    ordered = [row["subject"] for row in first["results"] + second["results"]]
    assert ordered == sorted(ordered)
    last = gql(client, mailbox.headers, LIST, pageSize=4, page=7, lastPage=True)["data"]["emails"]
    assert last["page"] == 2  # lastPage wins over page
    for page in (3, 0, -1):  # past the end, or below 1 (-1 meant "last" before lastPage existed)
        bad = gql(client, mailbox.headers, LIST, page=page)
        assert bad["errors"][0]["extensions"]["code"] == "INVALID_PAGE", page
    capped = gql(client, mailbox.headers, LIST, pageSize=1000)["data"]["emails"]
    assert capped["pageSize"] == 100


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lighthouse", {"Lighthouse tour", "Re: Lighthouse tour"}),
        ("MÜNCHEN", {"Grüße aus München"}),
        ("camera", {"Re: Lighthouse tour"}),
        ("from:ann", {"Lighthouse tour", "Re: Lighthouse tour"}),
        ("to:me@example", {"Invoice 42"}),
        ("subject:invoice", {"Invoice 42"}),
        ('"same subject"', {"Lighthouse tour"}),
        ("lighthouse -from:zed -from:bob", {"Lighthouse tour", "Re: Lighthouse tour"}),
        ("in:sent", {"Re: Lighthouse tour"}),
        ("has:attachment", {"Grüße aus München"}),
        ("is:starred", {"Grüße aus München"}),
        ("is:read", {"Re: Lighthouse tour"}),
        ("after:2024-11-05", {"Invoice 42", "Lighthouse tour"}),
        ("before:2024-11-02 lighthouse", {"Lighthouse tour"}),
        ("42", {"Invoice 42"}),
        ("nothing-like-this", set()),
    ],
)
def test_search(client, mailbox, q, expected) -> None:
    # The same answer while the new mail waits for the search index, and once it is in.
    assert set(subjects(gql(client, mailbox.headers, LIST, q=q))) == expected
    index_all_pending()
    assert set(subjects(gql(client, mailbox.headers, LIST, q=q))) == expected


def test_search_counts_and_negation_exactly(client, mailbox) -> None:
    for _ in ("queued for the index", "indexed"):
        body = gql(client, mailbox.headers, LIST, q="lighthouse -zed")["data"]["emails"]
        assert body["count"] == 3
        assert {row["sender"] for row in body["results"]} == {"ann@example.com", "bob@example.org"}
        index_all_pending()


def test_filters(client, mailbox) -> None:
    assert subjects(gql(client, mailbox.headers, LIST, folder="Sent")) == ["Re: Lighthouse tour"]
    body = gql(client, mailbox.headers, LIST, dateFrom="2024-11-02", dateTo="2024-11-04")["data"]["emails"]
    assert body["count"] == 3  # both ends inclusive
    # dateFrom is a GraphQL Date: another format is refused before any resolver runs.
    bad = gql(client, mailbox.headers, LIST, dateFrom="27/11/2024")
    assert bad["data"] is None and bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "$dateFrom" in bad["errors"][0]["message"]
    assert gql(client, mailbox.headers, LIST, server=str(mailbox.server_id))["data"]["emails"]["count"] == 6
    assert (
        "imapServer"
        in gql(client, mailbox.headers, LIST, server="999999")["errors"][0]["extensions"]["fields"]
    )


def test_thread_view_lists_each_conversation_once(client, mailbox) -> None:
    rows = gql(client, mailbox.headers, LIST, thread=True)["data"]["emails"]["results"]
    counts = {row["threadId"]: row["threadCount"] for row in rows}
    assert len(rows) == len(counts) == 4
    tour = [row for row in rows if row["threadCount"] == 3]
    assert len(tour) == 1 and tour[0]["date"].startswith("2024-11-03")  # its newest message
    searched = gql(client, mailbox.headers, LIST, thread=True, q="from:ann")["data"]["emails"]
    assert searched["count"] == 1  # the newest matching message of its thread: Ann's reply of day 3
    assert [row["date"][:10] for row in searched["results"]] == ["2024-11-03"]
    in_inbox = gql(client, mailbox.headers, LIST, thread=True, folder="INBOX")["data"]["emails"]
    assert in_inbox["count"] == 4 and all(row["folder"] == "INBOX" for row in in_inbox["results"])
    threads = gql(
        client, mailbox.headers, "{ threads(pageSize: 2) { count hasNext results { threadCount } } }"
    )
    assert threads["data"]["threads"]["count"] == 4 and threads["data"]["threads"]["hasNext"]


def test_email_details_and_threads(client, mailbox) -> None:
    munich = mailbox.emails(message_id="<m1@x>")[0]
    detail = gql(
        client,
        mailbox.headers,
        """query($id: ID!) { email(id: $id) {
        id messageId subject sender senderName recipient cc bodyText bodyHtml flags flagged seen size
        hasAttachments createdAt updatedAt inReplyTo references imapServer
        attachments { filename contentType size inline } threadEmails { id } } }""",
        id=munich.id,
    )["data"]["email"]
    assert detail["bodyText"].startswith("Bis bald in München.") and detail["senderName"] == "Jörg"
    assert detail["flags"] == ["\\Flagged"] and detail["flagged"] and not detail["seen"]
    assert detail["attachments"] == [
        {
            "filename": "plan.pdf",
            "contentType": "application/pdf",
            "size": len(b"%PDF-1.4 plan"),
            "inline": False,
        }
    ]
    assert detail["threadEmails"] == [] and detail["imapServer"] == str(mailbox.server_id)

    reply = mailbox.emails(message_id="<t3@x>")[0]
    thread = gql(
        client, mailbox.headers, "query($id: ID!) { emailThread(emailId: $id) { messageId } }", id=reply.id
    )
    assert [row["messageId"] for row in thread["data"]["emailThread"]] == ["<t1@x>", "<t2@x>", "<t3@x>"]
    by_id = gql(
        client, mailbox.headers, "query($t: String!) { thread(id: $t) { messageId } }", t=reply.thread_id
    )
    assert len(by_id["data"]["thread"]) == 3
    members = gql(
        client,
        mailbox.headers,
        "query($id: ID!) { email(id: $id) { inReplyTo references threadEmails { messageId } } }",
        id=reply.id,
    )
    assert members["data"]["email"] == {
        "inReplyTo": "<t2@x>",
        "references": ["<t1@x>", "<t2@x>"],
        "threadEmails": [{"messageId": "<t1@x>"}, {"messageId": "<t2@x>"}],
    }


def test_folders_and_statistics(client, mailbox) -> None:
    folders = gql(client, mailbox.headers, "{ folders }")["data"]["folders"]
    assert folders[0] == "INBOX" and "Sent" in folders and "Trash" not in folders
    stats = gql(client, mailbox.headers, "{ statistics { totalEmails totalThreads folders { name count } } }")
    assert stats["data"]["statistics"] == {
        "totalEmails": 6,
        "totalThreads": 4,
        "folders": [{"name": "INBOX", "count": 5}, {"name": "Sent", "count": 1}],
    }


def test_other_users_see_nothing(client, mailbox, auth) -> None:
    email_id = mailbox.emails()[0].id
    assert gql(client, auth, LIST)["data"]["emails"]["count"] == 0
    assert gql(client, auth, "{ folders }")["data"]["folders"] == []
    assert gql(client, auth, "{ statistics { totalEmails } }")["data"]["statistics"]["totalEmails"] == 0
    for query, variables in [
        ("query($id: ID!) { email(id: $id) { id } }", {"id": email_id}),
        ("query($id: ID!) { emailThread(emailId: $id) { id } }", {"id": email_id}),
        ("query($t: String!) { thread(id: $t) { id } }", {"t": mailbox.emails()[0].thread_id}),
        ("query($id: ID!) { imapServer(id: $id) { id } }", {"id": mailbox.server_id}),
        ("query($id: ID!) { folders(imapServer: $id) }", {"id": mailbox.server_id}),
        ("query($id: ID!) { syncRuns(imapServer: $id) { id } }", {"id": mailbox.server_id}),
        ("mutation($id: ID!) { deleteImapServer(id: $id) }", {"id": mailbox.server_id}),
        (
            'mutation($id: ID!) { updateImapServer(id: $id, input: {name: "x"}) { id } }',
            {"id": mailbox.server_id},
        ),
        ("mutation($id: ID!) { syncImapServer(id: $id) { id } }", {"id": mailbox.server_id}),
    ]:
        body = gql(client, auth, query, **variables)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", query
        assert body["errors"][0]["message"] == "Not found."
    assert gql(client, mailbox.headers, LIST)["data"]["emails"]["count"] == 6


def test_a_page_costs_a_constant_number_of_queries(client, mirror) -> None:
    mirror.dovecot.add_messages(
        mirror.mail_user,
        "INBOX",
        [
            make_message(
                subject=f"m{n}", message_id=f"<q{n}@x>", in_reply_to=f"<q{n - 1}@x>" if n % 3 else None
            )
            for n in range(120)
        ],
    )
    assert mirror.sync().status == "success"
    query = """query($size: Int) { emails(pageSize: $size) { count results { id threadCount bodyText
               attachments { id } threadEmails { id } } } }"""

    def statements_for(size: int) -> list[str]:
        seen: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
            seen.append(statement)

        gql(client, mirror.headers, "{ me { username } }")  # token lookups cached/stamped beforehand
        event.listen(get_engine(), "before_cursor_execute", count)
        try:
            body = gql(client, mirror.headers, query, size=size)
        finally:
            event.remove(get_engine(), "before_cursor_execute", count)
        assert len(body["data"]["emails"]["results"]) == size
        return seen

    small, large = statements_for(10), statements_for(100)
    # token, count, page, thread counts, bodies, attachments, thread members: whatever the page size
    assert len(small) == len(large) <= 8, large


def test_deleting_a_server_removes_its_mail(client, mailbox) -> None:
    body = gql(
        client, mailbox.headers, "mutation($id: ID!) { deleteImapServer(id: $id) }", id=mailbox.server_id
    )
    assert body["data"]["deleteImapServer"] is True
    assert gql(client, mailbox.headers, LIST, q="lighthouse")["data"]["emails"]["count"] == 0
    assert mailbox.emails() == []


def test_unexpected_errors_are_masked(client, mailbox, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(crud_emails, "statistics", broken)
    body = gql(client, mailbox.headers, "{ statistics { totalEmails } }")
    assert body["errors"][0]["message"] == "Internal server error."
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in str(body)
