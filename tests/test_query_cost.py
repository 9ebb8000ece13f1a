"""Fan-out attacks on GraphQL: the cost limit, the thread-member limits and the body budget."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from graphql import get_introspection_query
from sqlalchemy import event

from imap2api.config import settings
from imap2api.db import get_engine
from tests.support.messages import make_message

FULL_TYPE = (
    "fragment Full on __Type { kind name description fields(includeDeprecated: true) { name description "
    "args { name description type { ...Ref } defaultValue } type { ...Ref } isDeprecated deprecationReason } "
    "inputFields { name type { ...Ref } defaultValue } "
    "enumValues(includeDeprecated: true) { name description } } "
    "fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"
)
# Three levels of thread members: on a 100-message thread, about a million objects.
ATTACK = """query($id: ID!) {
  email(id: $id) { threadEmails { threadEmails { threadEmails { id subject } } } }
}"""


def gql(client, headers, query: str, **variables):
    """Run a GraphQL query and return the whole response body."""
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers).json()


def code_of(body) -> str | None:
    """The code of a response's first error."""
    return (body.get("errors") or [{}])[0].get("extensions", {}).get("code")


@pytest.fixture()
def mailing_list(mirror):
    """A synced mailbox holding one mailing-list thread of 100 messages."""
    start = datetime(2024, 11, 1, tzinfo=UTC)
    mirror.dovecot.add_messages(
        mirror.mail_user,
        "INBOX",
        [
            make_message(
                subject=f"Re: [list] release plan {n}",
                message_id=f"<list{n}@x>",
                in_reply_to="<list0@x>" if n else None,
                references=["<list0@x>"] if n else None,
                date=start + timedelta(minutes=n),
            )
            for n in range(100)
        ],
    )
    assert mirror.sync().status == "success"
    return mirror


def test_nested_thread_members_are_refused_before_running(client, mailing_list) -> None:
    first = mailing_list.emails(message_id="<list0@x>")[0]
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    answers: dict[str, dict] = {}

    def attack() -> None:
        answers["attack"] = gql(client, mailing_list.headers, ATTACK, id=first.id)

    gql(client, mailing_list.headers, "{ me { id } }")  # the token is looked up and cached before counting
    event.listen(get_engine(), "before_cursor_execute", record)
    try:
        attacker = threading.Thread(target=attack)
        attacker.start()
        ping = gql(client, mailing_list.headers, "{ me { id } }")  # another request, meanwhile
        attacker.join(60)
    finally:
        event.remove(get_engine(), "before_cursor_execute", record)
    assert ping["data"]["me"]["id"]
    body = answers["attack"]
    assert body["data"] is None and code_of(body) == "QUERY_TOO_COMPLEX"
    error = body["errors"][0]
    assert error["extensions"]["maxCost"] == 50_000 and error["extensions"]["cost"] > 50_000
    assert str(error["extensions"]["cost"]) in error["message"] and "50000" in error["message"]
    # Refused before execution: not one email was read for it.
    assert not [statement for statement in statements if "emails" in statement.lower()], statements


def test_deep_but_small_queries_still_work(client, mailing_list) -> None:
    first = mailing_list.emails(message_id="<list0@x>")[0]
    query = """query($id: ID!) { email(id: $id) { subject threadEmails(limit: 2) { messageId
                 threadEmails(limit: 2) { messageId threadEmails(limit: 2) { messageId } } } } }"""
    email = gql(client, mailing_list.headers, query, id=first.id)["data"]["email"]
    assert [member["messageId"] for member in email["threadEmails"]] == ["<list1@x>", "<list2@x>"]
    # Each member lists the first others of the thread, itself left out.
    assert [m["messageId"] for m in email["threadEmails"][0]["threadEmails"]] == ["<list0@x>", "<list2@x>"]
    assert [m["messageId"] for m in email["threadEmails"][1]["threadEmails"][0]["threadEmails"]] == [
        "<list1@x>",
        "<list2@x>",
    ]


def test_thread_member_limits(client, mailing_list, monkeypatch) -> None:
    first = mailing_list.emails(message_id="<list0@x>")[0]
    members = "query($id: ID!, $n: Int) { email(id: $id) { threadEmails(limit: $n) { id } } }"

    def count(**variables) -> int:
        body = gql(client, mailing_list.headers, members, id=first.id, **variables)
        return len(body["data"]["email"]["threadEmails"])

    assert (count(), count(n=500)) == (50, 99)
    whole = "query($id: ID!, $n: Int) { emailThread(emailId: $id, limit: $n) { id } }"
    assert len(gql(client, mailing_list.headers, whole, id=first.id)["data"]["emailThread"]) == 100
    assert len(gql(client, mailing_list.headers, whole, id=first.id, n=7)["data"]["emailThread"]) == 7
    monkeypatch.setattr(settings, "max_thread_emails", 30)
    assert count(n=500) == 30
    by_thread = "query($t: String!) { thread(id: $t) { id } }"
    assert len(gql(client, mailing_list.headers, by_thread, t=first.thread_id)["data"]["thread"]) == 30


def test_rest_lists_the_whole_thread_as_apidoc_shows(client, mailing_list) -> None:
    first = mailing_list.emails(message_id="<list0@x>")[0]
    detail = client.get(f"/api/emails/{first.id}/", headers=mailing_list.headers)
    assert detail.status_code == 200
    assert len(detail.json()["thread_emails"]) == 99
    thread = client.get(f"/api/emails/{first.id}/thread/", headers=mailing_list.headers)
    assert thread.status_code == 200 and len(thread.json()) == 100


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        # The page size given by a variable.
        (
            "query($n: Int) { emails(pageSize: $n) { results { threadEmails(limit: 500) { id } } } }",
            {"n": 100},
        ),
        # A variable's default.
        ("query($n: Int = 100) { emails(pageSize: $n) { results { threadEmails(limit: 500) { id } } } }", {}),
        # A fragment, and an inline fragment.
        (
            "fragment Members on Email { threadEmails(limit: 500) { id subject } } "
            "{ emails(pageSize: 100) { results { ...Members } } }",
            {},
        ),
        ("{ threads(pageSize: 100) { results { ... on Email { threadEmails(limit: 500) { id } } } } }", {}),
        # Aliases: each one small enough, together too much.
        (
            "{ "
            + " ".join(
                f"a{n}: emails(pageSize: 100) {{ results {{ threadEmails(limit: 20) {{ id }} }} }}"
                for n in range(30)
            )
            + " }",
            {},
        ),
        # Fragments doubling each other: the estimate is linear in the document, the result is not.
        (
            " ".join(
                f"fragment F{n} on Email {{ threadEmails(limit: 2) {{ ...F{n + 1} ...F{n + 1} }} }}"
                for n in range(8)
            )
            + " fragment F8 on Email { id } { email(id: 1) { ...F0 } }",
            {},
        ),
        # The whole schema, described ten times over.
        (
            "{ "
            + " ".join(f"a{n}: __schema {{ types {{ ...Full }} }}" for n in range(10))
            + " } "
            + FULL_TYPE,
            {},
        ),
    ],
)
def test_the_cost_counts_variables_fragments_and_aliases(client, auth, query, variables) -> None:
    body = gql(client, auth, query, **variables)
    assert code_of(body) == "QUERY_TOO_COMPLEX", body


def test_what_clients_ask_for_is_within_the_limit(client, auth) -> None:
    # GraphiQL's introspection, and a page of 100 emails with their thread counts and attachments.
    everything = get_introspection_query(descriptions=True, input_value_deprecation=True)
    introspection = gql(client, auth, everything)
    assert "errors" not in introspection and introspection["data"]["__schema"]["types"]
    small = "query($n: Int) { emails(pageSize: $n) { results { threadEmails(limit: 500) { id } } } }"
    assert gql(client, auth, small, n=1)["data"]["emails"]["results"] == []
    page = """{ emails(pageSize: 100) { count results { id subject sender date threadCount
               attachments { filename size } threadEmails(limit: 10) { id subject } } } }"""
    assert gql(client, auth, page)["data"]["emails"]["count"] == 0


def test_the_limit_is_a_setting(client, auth, monkeypatch) -> None:
    query = "{ emails(pageSize: 10) { results { id subject } } }"  # emails, results, 10 × (id, subject): 22
    monkeypatch.setattr(settings, "graphql_max_cost", 22)
    assert "errors" not in gql(client, auth, query)
    monkeypatch.setattr(settings, "graphql_max_cost", 21)
    body = gql(client, auth, query)
    assert code_of(body) == "QUERY_TOO_COMPLEX" and body["errors"][0]["extensions"]["cost"] == 22


@pytest.fixture()
def large_thread(mirror):
    """Three 60,000-character emails in one thread."""
    mirror.dovecot.add_messages(
        mirror.mail_user,
        "INBOX",
        [
            make_message(
                subject=f"report {n}",
                message_id=f"<big{n}@x>",
                in_reply_to="<big0@x>" if n else None,
                references=["<big0@x>"] if n else None,
                body=f"{n}" * 60_000,
                date=datetime(2024, 11, 1, tzinfo=UTC) + timedelta(hours=n),
            )
            for n in range(3)
        ],
    )
    assert mirror.sync().status == "success"
    return mirror


def test_the_body_budget_refuses_answers_carrying_too_much_text(client, large_thread, monkeypatch) -> None:
    monkeypatch.setattr(settings, "max_response_body_chars", 150_000)
    first = large_thread.emails(message_id="<big0@x>")[0]
    bodies = "query($t: String!, $n: Int) { thread(id: $t, limit: $n) { bodyText } }"
    two = gql(client, large_thread.headers, bodies, t=first.thread_id, n=2)["data"]["thread"]
    assert [len(email["bodyText"].strip()) for email in two] == [60_000, 60_000]
    three = gql(client, large_thread.headers, bodies, t=first.thread_id)
    assert code_of(three) == "RESULT_TOO_LARGE" and three["data"] is None
    assert "150000 characters" in three["errors"][0]["message"]
    # The same body selected again and again is sent again and again: it counts each time.
    aliases = "query($id: ID!) { " + " ".join(f"a{n}: email(id: $id) {{ bodyText }}" for n in range(3)) + " }"
    assert code_of(gql(client, large_thread.headers, aliases, id=first.id)) == "RESULT_TOO_LARGE"
    # REST: a 400 saying why.
    detail = client.get(f"/api/emails/{first.id}/", headers=large_thread.headers)
    assert detail.status_code == 400 and "IMAP2API_MAX_RESPONSE_BODY_CHARS" in detail.json()["detail"]
    # Each operation has its own budget.
    assert len(gql(client, large_thread.headers, bodies, t=first.thread_id, n=2)["data"]["thread"]) == 2
