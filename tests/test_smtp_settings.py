"""A server's SMTP settings: validation, presets, and the rule that a stored password is never sent to
an SMTP server it was not given for (the IMAP rule's twin)."""

from __future__ import annotations

from typing import Any

import pytest

from imap2api.errors import ValidationFailed
from imap2api.validation import IMAP_PASSWORD_FOR_SMTP, SMTP_PASSWORD_AGAIN, validate_server

NEW = {"name": "Work", "host": "imap.example.com", "username": "ann@example.com", "password": "pw"}


def stored(**fields: Any) -> dict[str, Any]:
    """A stored server's fields (as crud.servers.server_fields gives them), sending via smtp.example.com."""
    current = validate_server({**NEW, "smtp_host": "smtp.example.com"})
    current.pop("password")
    current.pop("smtp_password", None)
    return {**current, "smtp_password_set": False, **fields}


def refused(data: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """The field errors of a refused change."""
    with pytest.raises(ValidationFailed) as caught:
        validate_server(data, current=current)
    return caught.value.fields


def test_sending_is_off_by_default_and_the_defaults_are_submission_over_starttls() -> None:
    clean = validate_server(dict(NEW))
    assert clean["smtp_host"] == "" and clean["email_address"] == ""
    assert (clean["smtp_port"], clean["smtp_security"], clean["smtp_auth"], clean["save_sent"]) == (
        587,
        "starttls",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("imap_host", "smtp"),
    [
        ("imap.gmail.com", ("smtp.gmail.com", 465, "ssl", False)),
        ("outlook.office365.com", ("smtp.office365.com", 587, "starttls", False)),
        ("IMAP.mail.me.com", ("smtp.mail.me.com", 587, "starttls", True)),
        ("imap.fastmail.com", ("smtp.fastmail.com", 465, "ssl", True)),
    ],
)
def test_a_well_known_imap_host_fills_the_smtp_settings(imap_host: str, smtp: tuple) -> None:
    clean = validate_server({**NEW, "host": imap_host})
    assert (clean["smtp_host"], clean["smtp_port"], clean["smtp_security"], clean["save_sent"]) == smtp


def test_what_the_owner_gives_wins_over_the_preset() -> None:
    clean = validate_server({**NEW, "host": "imap.gmail.com", "smtp_port": 587, "smtp_security": "starttls"})
    assert (clean["smtp_host"], clean["smtp_port"], clean["smtp_security"]) == (
        "smtp.gmail.com",
        587,
        "starttls",
    )
    own = validate_server({**NEW, "host": "imap.gmail.com", "smtp_host": "relay.example.com"})
    assert (own["smtp_host"], own["save_sent"]) == ("relay.example.com", True)


def test_a_new_imap_host_fills_an_empty_smtp_setting_but_never_replaces_one() -> None:
    current = stored(smtp_host="")
    assert validate_server({"host": "imap.gmail.com", "password": "pw"}, current=current)["smtp_host"] == (
        "smtp.gmail.com"
    )
    assert "smtp_host" not in validate_server({"host": "imap.gmail.com", "password": "pw"}, current=stored())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("smtp_host", "smtp://mail.example.com", "without a scheme"),
        ("smtp_host", "mail.example.com:587", "port goes in the port field"),
        ("smtp_port", 0, "greater than or equal to 1"),
        ("smtp_port", 70000, "less than or equal to 65535"),
        ("smtp_security", "tls", "not a valid choice"),
        ("email_address", "Ann <ann@example.com>", "valid email address"),
        ("email_address", "ann@example.com\r\nBcc: x@evil.test", "Control characters"),
        ("smtp_username", "ann\r\nAUTH", "Control characters"),
        ("smtp_password", "pw\r\nQUIT", "Control characters"),
    ],
)
def test_smtp_fields_are_checked(field: str, value: Any, message: str) -> None:
    errors = refused({**NEW, field: value})
    assert message in " ".join(errors[field])


def test_the_smtp_host_is_stored_as_the_imap_host_is() -> None:
    assert validate_server({**NEW, "smtp_host": " SMTP.Example.COM "})["smtp_host"] == "SMTP.Example.COM"
    assert validate_server({**NEW, "smtp_host": "[::1]"})["smtp_host"] == "::1"


@pytest.mark.parametrize(
    "change",
    [
        {"smtp_host": "evil.example.net"},
        {"smtp_port": 25},
        {"smtp_security": "none"},
        {"tls_verify": False},
    ],
)
def test_a_new_smtp_destination_needs_the_password_smtp_logs_in_with(change: dict[str, Any]) -> None:
    # SMTP logs in with the IMAP password: that one is needed.
    errors = refused(change, stored())
    assert IMAP_PASSWORD_FOR_SMTP in errors.get("password", []) or "tls_verify" in change
    validate_server({**change, "password": "pw"}, current=stored())
    # SMTP has a password of its own: that one is needed, the IMAP one does not do.
    own = stored(smtp_password_set=True)
    assert SMTP_PASSWORD_AGAIN in refused({**change, "password": "pw"}, own)["smtp_password"]
    validate_server({**change, "password": "pw", "smtp_password": "new"}, current=own)


def test_turning_sending_on_needs_the_password_and_turning_it_off_does_not() -> None:
    off = stored(smtp_host="")
    assert "password" in refused({"smtp_host": "smtp.example.com"}, off)
    validate_server({"smtp_host": "smtp.example.com", "password": "pw"}, current=off)
    assert validate_server({"smtp_host": ""}, current=stored())["smtp_host"] == ""


def test_dropping_the_smtp_password_needs_the_imap_one() -> None:
    own = stored(smtp_password_set=True)
    assert IMAP_PASSWORD_FOR_SMTP in refused({"smtp_password": ""}, own)["password"]
    validate_server({"smtp_password": "", "password": "pw"}, current=own)


def test_a_relay_without_login_needs_no_password() -> None:
    relay = stored(smtp_auth=False)
    validate_server({"smtp_host": "relay.internal", "smtp_security": "none"}, current=relay)


def test_the_api_shows_the_smtp_settings_never_the_password(client, auth: dict[str, str]) -> None:
    body = {**NEW, "host": "imap.gmail.com", "smtp_password": "app-password"}
    created = client.post("/api/imap-servers/", json=body, headers=auth)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert (shown["smtp_host"], shown["smtp_port"], shown["save_sent"]) == ("smtp.gmail.com", 465, False)
    assert "smtp_password" not in shown and "app-password" not in created.text
    moved = client.patch(
        f"/api/imap-servers/{shown['id']}/", json={"smtp_host": "evil.example"}, headers=auth
    )
    assert moved.status_code == 400 and moved.json()["smtp_password"] == [SMTP_PASSWORD_AGAIN]
    # Deleted with its queued first sync: a later test's embedded worker would run it at start-up
    # (recovery), and a sync writing while test_time_bounds holds the SQLite lock takes a connection.
    assert client.delete(f"/api/imap-servers/{shown['id']}/", headers=auth).status_code == 204
