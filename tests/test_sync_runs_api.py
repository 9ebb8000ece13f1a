"""Sync runs over REST and GraphQL, and the folders named in folders_to_sync that the server lacks."""

from __future__ import annotations

import logging

import pytest

from imap2api.rest.schemas import SyncRunOut
from tests.support.messages import make_message

NOT_FOUND = {"detail": "Not found."}


def test_missing_folders_are_named_and_the_others_synced(mirror, caplog) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="in"))
    mirror.deliver(make_message(subject="out"), folder="Sent")
    mirror.configure(folders_to_sync="INBOX,Nope,sent")
    with caplog.at_level(logging.WARNING, logger="imap2api.sync"):
        run = mirror.sync()
    assert (run.status, run.missing_folders, run.error) == ("success", "Nope,sent", "")
    assert [email.subject for email in mirror.emails()] == ["in"]
    completed = mirror.events("sync.completed")[-1]
    assert (completed["status"], completed["missing_folders"]) == ("success", ["Nope", "sent"])
    assert "'sent' differs only in case from 'Sent'" in caplog.text

    mirror.configure(folders_to_sync="inbox,Sent")  # INBOX is case-insensitive (RFC 3501)
    run = mirror.sync()
    assert (run.status, run.missing_folders) == ("success", "")
    assert sorted(email.subject for email in mirror.emails()) == ["in", "out"]
    assert mirror.events("sync.completed")[-1]["missing_folders"] == []


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_the_runs_of_a_server_paginate_newest_first(client, mirror, prefix) -> None:  # noqa: ANN001
    mirror.configure(folders_to_sync="INBOX,Nope")
    ids = [mirror.sync().id for _ in range(3)]
    url = f"{prefix}/imap-servers/{mirror.server_id}/sync-runs/"
    first = client.get(url, params={"page_size": 2}, headers=mirror.headers).json()
    assert first["count"] == 3
    assert [run["id"] for run in first["results"]] == ids[:0:-1]
    assert first["next"] == f"http://testserver{url}?page_size=2&page=2"
    assert first["previous"] is None
    second = client.get(first["next"], headers=mirror.headers).json()
    assert [run["id"] for run in second["results"]] == [ids[0]]
    assert (second["next"], second["previous"]) == (None, f"http://testserver{url}?page_size=2")
    assert client.get(url, params={"page_size": 2, "page": "last"}, headers=mirror.headers).json() == second
    assert client.get(url, params={"page": 3}, headers=mirror.headers).json() == {"detail": "Invalid page."}

    newest = first["results"][0]
    assert list(newest) == list(SyncRunOut.model_fields)
    assert newest["imap_server"] == mirror.server_id
    assert (newest["status"], newest["trigger"], newest["missing_folders"]) == ("success", "manual", "Nope")
    assert isinstance(newest["bytes_fetched"], int)
    assert newest["finished_at"].endswith("Z")
    one = client.get(f"{prefix}/sync-runs/{newest['id']}/", headers=mirror.headers)
    assert (one.status_code, one.json()) == (200, newest)


def test_another_users_runs_are_not_found(client, mirror, auth) -> None:  # noqa: ANN001
    run = mirror.sync()
    for path in (f"/api/imap-servers/{mirror.server_id}/sync-runs/", f"/api/sync-runs/{run.id}/"):
        response = client.get(path, headers=auth)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path
        assert client.get(path, headers=mirror.headers).status_code == 200, path
        assert client.get(path).status_code == 401, path
    for path in ("/api/sync-runs/abc/", "/api/sync-runs/0/", "/api/imap-servers/abc/sync-runs/"):
        response = client.get(path, headers=mirror.headers)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path


def test_graphql_pages_through_the_runs(client, mirror) -> None:  # noqa: ANN001
    mirror.configure(folders_to_sync="INBOX,Gone")
    ids = [str(mirror.sync().id) for _ in range(2)]
    query = """query($s: ID!) { syncRunHistory(imapServer: $s, pageSize: 1) {
      count page hasNext hasPrevious results { id imapServer status missingFolders } } }"""
    answer = client.post(
        "/graphql", json={"query": query, "variables": {"s": mirror.server_id}}, headers=mirror.headers
    ).json()
    assert answer["data"]["syncRunHistory"] == {
        "count": 2,
        "page": 1,
        "hasNext": True,
        "hasPrevious": False,
        "results": [
            {"id": ids[1], "imapServer": str(mirror.server_id), "status": "SUCCESS", "missingFolders": "Gone"}
        ],
    }


def test_the_routes_are_documented(client) -> None:  # noqa: ANN001
    paths = client.get("/openapi.json").json()["paths"]

    def answer(operation: dict) -> str:
        return operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]

    listed = paths["/api/imap-servers/{server_id}/sync-runs/"]["get"]
    assert answer(listed).endswith("/SyncRunList")
    assert {parameter["name"] for parameter in listed["parameters"]} >= {"server_id", "page", "page_size"}
    assert answer(paths["/api/sync-runs/{run_id}/"]["get"]).endswith("/SyncRunOut")
