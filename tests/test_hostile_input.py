"""Hostile input gets a clear 400, never a 500: absurdly nested JSON and GraphQL, thousand-word searches."""

from __future__ import annotations

import pytest

from imap2api.nesting import MAX_DEPTH, TooDeeplyNested, check_graphql_depth, check_json_depth

JSON = {"Content-Type": "application/json"}
TOO_DEEP = {"detail": "JSON parse error - the JSON document is nested more than 64 levels deep"}
TOO_MANY_TERMS = "Too many search terms: at most 50 words, phrases and operators are allowed."


def nested(depth: int) -> bytes:
    """A JSON object whose one field nests ``depth`` arrays."""
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    "path", ["/api-token-auth/", "/api/imap-servers/", "/api/webhooks/", "/api/v1/webhooks/"]
)
def test_deeply_nested_json_bodies_are_400(client, auth, path) -> None:
    # 100,000 levels overflowed the parser's recursion (a 500); 65 is just past the cap.
    for depth in (100_000, MAX_DEPTH + 1):
        response = client.post(path, content=nested(depth), headers={**auth, **JSON})
        assert response.status_code == 400, response.text
        assert response.json() == TOO_DEEP


def test_nested_json_on_updates_is_400(client, auth) -> None:
    server = client.post(
        "/api/imap-servers/",
        headers=auth,
        json={"name": "Home", "host": "mail.example.com", "username": "u", "password": "p"},
    ).json()
    for method in ("PUT", "PATCH"):
        response = client.request(
            method, f"/api/imap-servers/{server['id']}/", content=nested(100_000), headers={**auth, **JSON}
        )
        assert response.status_code == 400 and response.json() == TOO_DEEP
    # Shallow nesting is judged as before: a list is not a string.
    shallow = client.patch(f"/api/imap-servers/{server['id']}/", json={"name": [[["x"]]]}, headers=auth)
    assert shallow.status_code == 400 and shallow.json() == {"name": ["Not a valid string."]}


def test_deeply_nested_graphql_requests_are_400(client, auth) -> None:
    body = b'{"query": "{ me { id } }", "variables": {"v": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    posted = client.post("/graphql", content=body, headers={**auth, **JSON})
    assert posted.status_code == 400
    assert posted.text == (
        "Unable to parse request body as JSON: the JSON document is nested more than 64 levels deep."
    )
    deep = "[" * 5000 + "]" * 5000
    variables = client.get("/graphql", params={"query": "{ me { id } }", "variables": deep}, headers=auth)
    assert variables.status_code == 400 and "nested more than 64 levels" in variables.text
    extensions = client.get(
        "/graphql", params={"query": "{ me { id } }", "extensions": "{" + '"a":{' * 5000}, headers=auth
    )
    assert extensions.status_code == 400 and "nested more than 64 levels" in extensions.text
    for document in (
        "{" + "me { " * 1000 + "id" + " }" * 1001,  # selections
        "{ emails(q: " + "[" * 300 + "]" * 300 + ") { count } }",  # list values
        "{ emails(q: " + "{a: " * 300 + "1" + "}" * 300 + ") { count } }",
    ):  # object values
        response = client.post("/graphql", json={"query": document}, headers=auth)
        assert response.status_code == 400
        assert response.text == (
            "Unable to parse the GraphQL document: the GraphQL document is nested more than 64 levels deep."
        )
    # Ordinary requests are untouched.
    assert client.post("/graphql", json={"query": "{ me { id } }"}, headers=auth).json()["data"]["me"]["id"]
    got = client.get("/graphql", params={"query": "{ me { id } }", "variables": '{"a": [[1]]}'}, headers=auth)
    assert got.status_code == 200 and got.json()["data"]["me"]["id"]


@pytest.mark.parametrize("path", ["/api/emails/", "/api/emails/threads/", "/api/v1/emails/"])
def test_a_search_of_a_thousand_words_is_400(client, auth, path) -> None:
    for q in (
        " ".join(f"word{n}" for n in range(1500)),
        " ".join("in:x" for _ in range(1500)),
        " ".join(f'-"phrase {n}"' for n in range(51)),
    ):
        response = client.get(path, params={"q": q}, headers=auth)
        assert response.status_code == 400, response.text
        assert response.json() == {"q": [TOO_MANY_TERMS]}
    fifty = " ".join(f"word{n}" for n in range(50))
    assert client.get(path, params={"q": fifty}, headers=auth).json()["count"] == 0


def test_a_search_of_a_thousand_words_is_a_graphql_validation_error(client, auth) -> None:
    q = " ".join(f"word{n}" for n in range(1500))
    for field in ("emails", "threads"):
        body = client.post(
            "/graphql",
            json={"query": f"query($q: String) {{ {field}(q: $q) {{ count }} }}", "variables": {"q": q}},
            headers=auth,
        ).json()
        error = body["errors"][0]
        assert error["extensions"]["code"] == "VALIDATION_ERROR"
        assert error["extensions"]["fields"] == {"q": [TOO_MANY_TERMS]}


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 64 + "]" * 64, False),
        ("[" * 65 + "]" * 65, True),
        ('{"a": ' * 65 + "1" + "}" * 65, True),
        ('["' + "[" * 1000 + '"]', False),  # brackets inside a string do not nest
        ('["\\"' + "[" * 1000 + '"]', False),  # nor after an escaped quote
        ("[[]]" * 1000, False),  # many brackets, shallow
    ],
)
def test_json_depth_is_measured_outside_strings(text, deep) -> None:
    for value in (text, text.encode()):
        if deep:
            with pytest.raises(TooDeeplyNested):
                check_json_depth(value)
        else:
            check_json_depth(value)


@pytest.mark.parametrize(
    ("source", "deep"),
    [
        ("{" + " a {" * 63 + " b" + " }" * 64, False),
        ("{" + " a {" * 64 + " b" + " }" * 65, True),
        ('{ a(s: "' + "{" * 100 + '") }', False),  # inside a string
        ('{ a(s: """' + "{" * 100 + ' " "" """) }', False),  # inside a block string
        ("# " + "{" * 100 + "\n{ a }", False),  # inside a comment
        ("{ a(v: " + "[" * 65 + "]" * 65 + ") }", True),
    ],
)
def test_graphql_depth_is_measured_outside_strings_and_comments(source, deep) -> None:
    if deep:
        with pytest.raises(TooDeeplyNested):
            check_graphql_depth(source)
    else:
        check_graphql_depth(source)


@pytest.mark.timeout(60)
def test_an_unterminated_string_is_scanned_once() -> None:
    # Every escaped quote used to restart the string match to the end of the text: quadratic time,
    # hours of a blocked event loop for one 1 MB body (the body limit), before any login.
    json_text = '"' + '\\"' * 400_000 + "[" * 70
    for value in (json_text, json_text.encode()):
        check_json_depth(value)  # the brackets are inside the (unterminated) string
    check_graphql_depth('{ a(s: "' + '\\"' * 400_000 + "{" * 70)
    check_graphql_depth('{ a(s: """' + '\\"""' * 200_000 + "{" * 70)
