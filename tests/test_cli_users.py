"""The ``imap2api`` command for the first hour: users (one password rule everywhere, set-password,
make-admin), a failed sync said once, and a command list whose descriptions are not cut off."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from imap2api.cli import main
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.errors import ValidationFailed
from imap2api.services import accounts
from imap2api.services.principal import Principal
from imap2api.sync import engine
from imap2api.validation import validate_server

TOO_SHORT = "Ensure this field has at least 8 characters."


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``imap2api sync`` installs its own stderr handler on the root logger: put pytest's back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run(*args: str, input: str | None = None) -> Result:  # noqa: A002 - CliRunner's name
    """Invoke the command in-process; the output holds stdout and stderr."""
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def logs_in(username: str, password: str) -> bool:
    """Whether these credentials log in."""
    with session_scope() as session:
        return crud_users.authenticate_user(session, username=username, password=password) is not None


def user_row(username: str):  # noqa: ANN201
    """The stored user."""
    with session_scope() as session:
        return crud_users.get_user_by_username(session, username=username)


def token_works(key: str) -> bool:
    """Whether an API token still authenticates."""
    with session_scope() as session:
        return crud_users.user_for_token(session, key=key) is not None


# --- one password rule ---


def test_createuser_refuses_the_password_the_admin_refuses(database: str) -> None:
    refused = run("createuser", "five", "--password", "12345")
    assert refused.exit_code == 1
    assert refused.output.strip() == f"Error: password: {TOO_SHORT}"
    assert user_row("five") is None
    created = run("createuser", "eight", "--password", "12345678", "--admin")
    assert (created.exit_code, created.output.strip()) == (0, "created admin user eight")
    assert logs_in("eight", "12345678") and user_row("eight").is_admin


def test_the_rule_is_the_same_for_the_admin_and_the_cli(database: str, make_user) -> None:  # noqa: ANN001
    system = Principal.system()
    for password, accepted in (("", False), ("1234567", False), ("12345678", True)):
        with session_scope() as session:
            if accepted:
                accounts.check_password(password)
                continue
            with pytest.raises(ValidationFailed) as refused:
                accounts.check_password(password)
            # The admin's create and edit go through save_user: refused the same way.
            with pytest.raises(ValidationFailed) as by_admin:
                accounts.save_user(
                    session,
                    system,
                    None,
                    username="someone",
                    password=password,
                    is_admin=False,
                    is_active=True,
                )
            assert by_admin.value.fields == refused.value.fields
    assert refused.value.fields == {"password": [TOO_SHORT]}
    username, old, _ = make_user()
    with session_scope() as session, pytest.raises(ValidationFailed):
        user_id = crud_users.get_user_by_username(session, username=username).id
        accounts.save_user(
            session, system, user_id, username=username, password="short", is_admin=False, is_active=True
        )
    assert logs_in(username, old)


def test_the_prompt_asks_again_for_a_password_the_rule_refuses(database: str) -> None:
    answer = run("createuser", "prompted", input="short\nlong-enough\nlong-enough\n")
    assert answer.exit_code == 0, answer.output
    assert TOO_SHORT in answer.output and answer.output.count("Password:") == 2
    assert logs_in("prompted", "long-enough")


def test_a_taken_name_is_said_in_one_line(database: str, make_user) -> None:  # noqa: ANN001
    username, _, _ = make_user()
    refused = run("createuser", username.upper(), "--password", "12345678")
    assert (refused.exit_code, refused.output.strip()) == (1, f"Error: username: {crud_users.TAKEN}")


# --- user set-password ---


def test_set_password_replaces_it_and_keeps_tokens(database: str, make_user) -> None:  # noqa: ANN001
    username, old, token = make_user()
    answer = run("user", "set-password", username, "--password", "a-new-password")
    assert (answer.exit_code, answer.output.strip()) == (0, f"password of {username} changed")
    assert logs_in(username, "a-new-password") and not logs_in(username, old)
    assert token_works(token)


def test_set_password_prompts_twice_and_can_revoke_tokens(database: str, make_user) -> None:  # noqa: ANN001
    username, _, token = make_user()
    answer = run("user", "set-password", username, "--revoke-tokens", input="typed-twice\ntyped-twice\n")
    assert answer.exit_code == 0, answer.output
    assert "New password:" in answer.output and "Repeat for confirmation:" in answer.output
    assert answer.output.strip().endswith(f"password of {username} changed; 1 token(s) revoked")
    assert logs_in(username, "typed-twice") and not token_works(token)


def test_set_password_refuses_a_short_one_and_changes_nothing(database: str, make_user) -> None:  # noqa: ANN001
    username, old, token = make_user()
    refused = run("user", "set-password", username, "--password", "short", "--revoke-tokens")
    assert (refused.exit_code, refused.output.strip()) == (1, f"Error: password: {TOO_SHORT}")
    assert logs_in(username, old) and token_works(token)


def test_set_password_of_nobody_fails_before_asking(database: str) -> None:
    refused = run("user", "set-password", "nobody-at-all", input="never-read\nnever-read\n")
    assert (refused.exit_code, refused.output.strip()) == (1, "Error: no user named 'nobody-at-all'")


# --- user make-admin ---


def test_make_admin_and_revoke(database: str, make_user) -> None:  # noqa: ANN001
    username, _, _ = make_user()
    steps = [
        (["user", "make-admin", username], f"{username} is now an admin", True),
        (["user", "make-admin", username], f"{username} was already an admin", True),
        (["user", "make-admin", username, "--revoke"], f"{username} is no longer an admin", False),
        (["user", "make-admin", username, "--revoke"], f"{username} was not an admin", False),
    ]
    for args, said, admin in steps:
        answer = run(*args)
        assert (answer.exit_code, answer.output.strip()) == (0, said)
        assert user_row(username).is_admin is admin
    missing = run("user", "make-admin", "nobody-at-all")
    assert (missing.exit_code, missing.output.strip()) == (1, "Error: no user named 'nobody-at-all'")


# --- sync failures ---


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_server(make_user) -> int:  # noqa: ANN001
    """An IMAP server whose host refuses connections; returns its id."""
    username, _, _ = make_user()
    data = validate_server(
        {
            "name": "unreachable",
            "host": "127.0.0.1",
            "port": closed_port(),
            "username": "someone",
            "password": "secret",
            "tls_mode": "starttls",
        }
    )
    with session_scope() as session:
        owner = crud_users.get_user_by_username(session, username=username)
        return crud_servers.create_server(session, owner_id=owner.id, data=data).id


def test_a_failed_sync_says_so_once_and_exits_1(database: str, make_user) -> None:  # noqa: ANN001
    answer = run("sync", str(unreachable_server(make_user)))
    assert answer.exit_code == 1
    errors = [line for line in answer.output.splitlines() if "could not connect" in line]
    assert errors == [f"Error: sync failed [IMAP_CONNECTION_FAILED]: {errors[0].split(': ', 2)[2]}"]
    assert "Connection refused" in errors[0] and "Traceback" not in answer.output


def test_a_crashed_sync_says_so_in_one_line(database: str, make_user, monkeypatch) -> None:  # noqa: ANN001
    def crash(*_: object, **__: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(engine, "mirror_server", crash)
    answer = run("sync", str(unreachable_server(make_user)))
    assert answer.exit_code == 1
    assert "Traceback" not in answer.output and "crashed" not in answer.output
    assert answer.output.splitlines()[-1] == (
        "Error: sync failed [SYNC_CRASHED]: internal error: KeyError "
        "(IMAP2API_LOG_LEVEL=DEBUG shows the traceback)"
    )


def test_sync_of_an_unknown_server(database: str) -> None:
    answer = run("sync", "987654")
    assert (answer.exit_code, answer.output.strip()) == (1, "Error: no IMAP server with id 987654")


# --- help ---


@pytest.mark.parametrize("group", [[], ["user"]])
def test_no_command_description_is_cut_off(group: list[str]) -> None:
    listing = run(*group, "--help").output.split("Commands:", 1)[1]
    lines = [line.strip() for line in listing.splitlines() if line.strip()]
    assert len(lines) >= (8 if not group else 2)
    assert [line for line in lines if line.endswith("...")] == []
    if not group:
        assert {line.split()[0] for line in lines} >= {
            "serve",
            "worker",
            "createuser",
            "user",
            "status",
            "docs",
        }


@pytest.mark.parametrize("command", [["createuser"], ["user", "set-password"]])
def test_the_help_states_the_rule_in_force(command: list[str]) -> None:
    assert f"at least {accounts.MIN_PASSWORD_LENGTH} characters" in run(*command, "--help").output
