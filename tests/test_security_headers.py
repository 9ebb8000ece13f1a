"""Security headers over HTTP: ``nosniff`` on every answer, and on every HTML page a Content Security
Policy that forbids framing, ``X-Frame-Options`` and a ``Referrer-Policy`` that keeps same-origin
referers (the admin's CSRF guard falls back to them). Pages with a policy of their own keep it; the
admin's policy allows nothing but its own files and the inline scripts it really renders (that the
pages then work in Chromium is ``test_admin_browser.py`` and ``test_graphiql_browser.py``).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from imap2api.app import create_app
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.graphiql import missing_assets
from imap2api.graphiql.fetch_assets import SWAGGER_JS
from imap2api.security_headers import script_hash

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

ORIGIN = {"Origin": "http://testserver"}
HTML = {"Accept": "text/html"}
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def directives(policy: str) -> dict[str, list[str]]:
    """A Content Security Policy as {directive: [sources]}."""
    parsed = {}
    for part in policy.split(";"):
        if part.strip():
            name, *sources = part.split()
            parsed[name] = sources
    return parsed


def assert_protected_page(response) -> dict[str, list[str]]:  # noqa: ANN001
    """Check the headers of an HTML page; returns its parsed policy."""
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] in ("same-origin", "strict-origin-when-cross-origin")
    policy = directives(response.headers["content-security-policy"])
    assert policy["frame-ancestors"] in (["'none'"], ["'self'"]), policy
    return policy


def assert_scripts_allowed(response, policy: dict[str, list[str]]) -> None:  # noqa: ANN001
    """Every inline script of the page is allowed by hash, and no other inline script would be."""
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    for source in INLINE_SCRIPT.findall(response.text):
        assert script_hash(source) in policy["script-src"], source[:80]


@pytest.fixture()
def admin(client, make_user):  # noqa: ANN001, ANN201
    """The test client, logged in to /admin as a fresh admin."""
    username, password, _ = make_user(admin=True)
    login = client.post(
        "/admin/login",
        data={"username": username, "password": password},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert login.status_code == 302
    return client


def test_admin_pages_allow_only_their_own_files_and_scripts(admin, make_user) -> None:  # noqa: ANN001
    with session_scope() as db:
        other_id = crud_users.get_user_by_username(db, username=make_user()[0]).id
    # An action leaves a flash message, whose toast is sqladmin's one inline script.
    action = admin.get(
        f"/admin/user/action/revoke-tokens?pks={other_id}", headers=ORIGIN, follow_redirects=False
    )
    assert action.status_code == 302
    flashed = admin.get(action.headers["location"], headers=ORIGIN)
    assert "Revoked 1 token(s)" in flashed.text and INLINE_SCRIPT.search(flashed.text)
    pages = [
        flashed,
        admin.get("/admin/user/list"),
        admin.get(f"/admin/user/details/{other_id}"),
        admin.get("/admin/webhook/create"),
    ]
    missing = admin.get("/admin/no-such-view/list")
    assert missing.status_code == 404
    for page in [*pages, missing]:
        policy = assert_protected_page(page)
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
        assert_scripts_allowed(page, policy)


def test_anonymous_admin_pages_are_protected_too(client) -> None:  # noqa: ANN001
    login = client.get("/admin/login")
    assert login.status_code == 200
    assert_scripts_allowed(login, assert_protected_page(login))
    refused = client.post("/admin/login", data={"username": "nobody", "password": "wrong"}, headers=ORIGIN)
    assert refused.status_code == 400
    assert_protected_page(refused)


def test_reference_pages_are_protected_and_keep_their_own_policies(client) -> None:  # noqa: ANN001
    explorer = client.get("/graphql", headers=HTML)
    explorer_policy = assert_protected_page(explorer)
    docs = client.get("/docs")
    docs_policy = assert_protected_page(docs)
    if not missing_assets():
        # GraphiQL's nonce policy is its own, not replaced by a default.
        assert any(source.startswith("'nonce-") for source in explorer_policy["script-src"])
        assert explorer_policy["default-src"] == ["'none'"]
        assert INLINE_SCRIPT.search(docs.text)
        assert_scripts_allowed(docs, docs_policy)


def test_every_answer_says_nosniff(client, auth) -> None:  # noqa: ANN001
    answers = {
        "JSON": client.get("/api/imap-servers/", headers=auth),
        "JSON error": client.get("/api/imap-servers/"),
        "404": client.get("/no/such/page", headers=HTML),
        "root": client.get("/", headers=HTML),
        "GraphQL": client.post("/graphql", json={"query": "{ __typename }"}),
        "admin asset": client.get("/admin/statics/css/main.css"),
        "missing asset": client.get("/static/graphiql/absent.js"),
        "health": client.get("/healthz"),
    }
    if not missing_assets():
        answers["asset"] = client.get(f"/static/graphiql/{SWAGGER_JS.filename}")
    for what, response in answers.items():
        assert response.headers.get("x-content-type-options") == "nosniff", what
    assert answers["JSON"].status_code == 200 and answers["404"].status_code == 404
    assert "content-security-policy" not in answers["JSON"].headers  # a policy only means something on pages


def test_even_an_unexpected_error_says_nosniff(database: str) -> None:
    app = create_app(run_worker=False)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken-for-this-test", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken-for-this-test")
    assert response.status_code == 500 and response.headers["x-content-type-options"] == "nosniff"
