"""X-Forwarded-For is believed only from the trusted proxies (none by default): a forged header
must not give a client a fresh rate budget."""

from __future__ import annotations

import httpx
import pytest

from tests.support.serve import served


def _statuses(url: str, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.get(f"{url}/api/emails/", headers={"X-Forwarded-For": address}).status_code
        for address in forwarded_for
    ]


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"], ids=["default", "behind-a-proxy"])
def test_forwarded_for_counts_only_from_trusted_proxies(tmp_path, trusted) -> None:
    settings = {"rate_limit_anon": "2/minute"}
    if trusted:
        settings["trusted_proxies"] = trusted
    with served(tmp_path, **settings) as url:
        statuses = _statuses(url, ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.3", "203.0.113.3"])
    if trusted:
        # Each client behind the proxy has its own budget of 2.
        assert statuses == [401, 401, 401, 401, 429]
    else:
        # Every request comes from 127.0.0.1, whatever the header says.
        assert statuses == [401, 401, 429, 429, 429]
