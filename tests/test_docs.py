"""The documentation keeps up with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imap2api import reference
from imap2api.config import Settings
from imap2api.webhooks.signing import headers, new_secret

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md"])
def test_every_setting_is_documented(document) -> None:
    text = (ROOT / document).read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == [], f"{document} does not document {missing}"


@pytest.mark.parametrize(
    ("name", "render"), [("schema.graphql", "graphql_sdl"), ("rest.md", "rest_markdown")]
)
def test_generated_references_are_current(name, render) -> None:
    committed = (ROOT / "docs" / name).read_text()
    assert committed == getattr(reference, render)(), f"docs/{name} is stale: run `imap2api docs docs`"


def test_the_python_verification_example_accepts_our_signatures() -> None:
    text = (ROOT / "docs" / "webhooks.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(example, namespace)  # noqa: S102 - our own documentation
    secret, body = new_secret(), b'{"id": "evt_1", "type": "webhook.test"}'
    signed = headers(secret, "evt_1", body)
    assert namespace["verify"](secret, signed, body)
    assert not namespace["verify"](secret, signed, body + b" ")
    assert not namespace["verify"](new_secret(), signed, body)
