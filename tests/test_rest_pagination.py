"""Page numbers on every paginated REST list as DRF reads them: only 1 and up, or ``last``."""

from __future__ import annotations

import pytest

INVALID = {"detail": "Invalid page."}
LISTS = [
    "/imap-servers/",
    "/emails/",
    "/emails/threads/",
    "/webhooks/",
    "/webhooks/{webhook}/deliveries/",
    "/tokens/",
]
SERVER = {"name": "s", "host": "imap.example.com", "username": "u", "password": "p"}


@pytest.fixture()
def webhook(client, auth) -> int:  # noqa: ANN001
    """A webhook of the caller, with one delivery."""
    created = client.post("/api/webhooks/", json={"url": "http://127.0.0.1:9/hook"}, headers=auth).json()
    assert client.post(f"/api/webhooks/{created['id']}/test/", headers=auth).status_code == 202
    return created["id"]


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
@pytest.mark.parametrize("path", LISTS)
def test_a_page_below_one_or_not_a_number_is_invalid(client, auth, webhook, prefix, path) -> None:  # noqa: ANN001
    url = prefix + path.format(webhook=webhook)
    for page in ("0", "-1", "-2", "00", "abc", "1.0", "last1", "99999999999", "9" * 5000):
        response = client.get(url, params={"page": page}, headers=auth)
        assert (response.status_code, response.json()) == (404, INVALID), (url, page[:20])
    for page in ("", "1", " 1 ", "last"):
        response = client.get(url, params={"page": page}, headers=auth)
        assert response.status_code == 200, (url, page)


def test_only_last_means_the_last_page(client, auth) -> None:  # noqa: ANN001
    for number in range(3):
        client.post("/api/imap-servers/", json={**SERVER, "name": f"s{number}"}, headers=auth)
    last = client.get("/api/imap-servers/?page_size=1&page=last", headers=auth).json()
    assert [server["name"] for server in last["results"]] == ["s2"]
    assert last["previous"] == "http://testserver/api/imap-servers/?page_size=1&page=2"
    assert client.get("/api/imap-servers/?page_size=1&page=-1", headers=auth).json() == INVALID


def test_a_huge_page_size_is_capped(client, auth) -> None:  # noqa: ANN001
    client.post("/api/imap-servers/", json=SERVER, headers=auth)
    for size in ("99999999999", "-99999999999", "0", "x"):
        response = client.get("/api/imap-servers/", params={"page_size": size}, headers=auth)
        assert response.status_code == 200 and response.json()["count"] == 1, size
