"""The state of one sync run as it goes: counts, progress, and what moved between folders."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from imap2api import pubsub
from imap2api.crud import events as crud_events
from imap2api.crud import sync_runs as crud_runs
from imap2api.enums import EventType
from imap2api.sync.moves import Moves


@dataclass
class RunState:
    """Everything a run accumulates while it walks the folders."""

    run_id: int | None  # None: a push sync (imap2api.sync.push), which keeps no run row
    server_id: int
    owner_id: int
    holder: str
    limit_type: str
    limit_value: int | None
    on_progress: Callable[[int, int], None] | None = None
    # The server never finished a sync: no folder.created/deleted; server.initial_sync_completed ends it.
    initial: bool = False
    started: float = field(default_factory=time.monotonic)
    new: int = 0
    updated: int = 0
    deleted: int = 0
    folders: int = 0
    bytes_fetched: int = 0
    events: int = 0  # written to the outbox (committed or about to be)
    done: int = 0
    total: int = 0
    # Names in folders_to_sync the server has none of: the run syncs the others, and says which.
    missing_folders: list[str] = field(default_factory=list)
    # Message-IDs removed from some folder in this run: seen again elsewhere, they moved.
    removed_message_ids: set[str] = field(default_factory=set)
    announced_message_ids: set[str] = field(default_factory=set)
    # Messages gone from their folder, held until the run knows whether another folder took them.
    moves: Moves = field(default_factory=Moves)

    def record_event(self, session: Session, type: EventType, data: dict[str, Any]) -> None:
        """Write an event of this run's server to the outbox, in the caller's transaction."""
        crud_events.record_event(
            session, owner_id=self.owner_id, server_id=self.server_id, type=type, data=data
        )
        self.events += 1

    def add_total(self, count: int) -> None:
        """More messages to fetch were found (the caller reports once the run row has them)."""
        self.total += count

    def drop_total(self, count: int) -> None:
        """Messages counted to be fetched went before they could be (expunged, folder recreated)."""
        self.total = max(self.done, self.total - count)

    def folder_done(self) -> None:
        """One more folder is mirrored."""
        self.folders += 1

    def add_done(self, count: int, size: int, *, moved: int = 0) -> None:
        """A batch was stored (``moved`` of its messages were held ones, rewritten in place)."""
        self.done += count
        self.new += count - moved
        self.updated += moved
        self.bytes_fetched += size
        self.report()

    def progress(self) -> dict[str, int]:
        """The run row's progress columns and counts as they stand."""
        return {"progress_done": self.done, "progress_total": self.total, **self.counts()}

    def store_progress(self, session: Session, **values: int) -> None:
        """Write the run row's progress and counts (or ``values`` instead), if the run has a row."""
        if self.run_id is not None:
            crud_runs.update_run(session, run_id=self.run_id, **(values or self.progress()))

    def announce_progress(self) -> None:
        """Tell the progress listener and live subscribers; call once the matching row is committed."""
        self.report()
        self.publish_progress()

    def publish_progress(self) -> None:
        """Tell the run's live subscribers (``syncProgress``) where it stands."""
        if self.run_id is not None:
            pubsub.publish(pubsub.run_channel(self.run_id), {"done": self.done, "total": self.total})

    def report(self) -> None:
        """Tell the progress listener, if any (call after the matching run row is committed)."""
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
