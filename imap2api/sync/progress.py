"""The state of one sync run as it goes: counts, progress, and what moved between folders."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunState:
    """Everything a run accumulates while it walks the folders."""

    run_id: int
    server_id: int
    owner_id: int
    holder: str
    limit_type: str
    limit_value: int | None
    on_progress: Callable[[int, int], None] | None = None
    started: float = field(default_factory=time.monotonic)
    new: int = 0
    updated: int = 0
    deleted: int = 0
    folders: int = 0
    bytes_fetched: int = 0
    done: int = 0
    total: int = 0
    # Message-IDs removed from some folder in this run: seen again elsewhere, they moved.
    removed_message_ids: set[str] = field(default_factory=set)
    announced_message_ids: set[str] = field(default_factory=set)

    def add_total(self, count: int) -> None:
        """More messages to fetch were found."""
        self.total += count
        self._report()

    def add_done(self, count: int, size: int) -> None:
        """A batch was stored."""
        self.done += count
        self.new += count
        self.bytes_fetched += size
        self._report()

    def _report(self) -> None:
        """Tell the progress listener, if any."""
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    @property
    def duration(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def counts(self) -> dict[str, int]:
        """The run's counters, as stored and announced."""
        return {
            "folders_synced": self.folders,
            "messages_new": self.new,
            "messages_updated": self.updated,
            "messages_deleted": self.deleted,
            "bytes_fetched": self.bytes_fetched,
        }
