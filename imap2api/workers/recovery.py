"""What a starting embedded server does about the runs its previous process left behind.

Without Redis, every sync of the deployment runs in ``serve`` itself. A ``serve`` that is starting
therefore knows that a run held by a process of this host that no longer runs is dead (a crash, a
SIGKILL, the OOM killer), and does not wait ``SYNC_LEASE_SECONDS`` for its lease to lapse: it fails
the run (``WORKER_LOST``) and frees the server at once. A run that was still queued lost its
message with the dead process's in-memory queue: it is queued again. A run that was running is not
restarted: it may be what killed the process, and a restart loop must not follow.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.enums import SyncTrigger
from imap2api.services import jobs

log = logging.getLogger("imap2api.workers")


def holder_is_dead(holder: str) -> bool:
    """Whether a lease holder (``host:pid:thread``, see ``holder_name``) is known to be gone.

    Only a holder on this host can be judged. This process's own pid (a container restarted as
    pid 1 again, say) is dead unless the thread is one of ours that runs; another pid is dead when
    no process has it. Anything unclear counts as alive, and is left to its lease.
    """
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not all(part.isdigit() for part in parts[1:]):
        return False
    pid, thread = int(parts[1]), int(parts[2])
    if pid == os.getpid():
        return thread not in {known.ident for known in threading.enumerate()}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # e.g. another user's process: alive
    return False


def recover_runs() -> tuple[int, int]:
    """Fail the runs of dead local holders and queue the queued runs again; returns both counts."""
    with session_scope() as session:
        failed = crud_runs.fail_runs_of_dead_holders(session, is_dead=holder_is_dead)
        queued = [(run.imap_server_id, run.id, run.trigger) for run in crud_runs.queued_runs(session)]
    for server_id, run_id, trigger in queued:
        # Each in the lane it was queued in; a run whose message did survive runs once all the same.
        jobs.send(jobs.sync_job(server_id, run_id, scheduled=trigger == SyncTrigger.SCHEDULE))
    if failed or queued:
        log.info(
            "start-up: failed %d sync runs left running by a dead process (WORKER_LOST), queued %d "
            "queued runs again",
            failed,
            len(queued),
        )
    return failed, len(queued)
