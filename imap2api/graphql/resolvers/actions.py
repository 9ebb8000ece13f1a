"""Writes to mail: flags, moves and deletes, done on the IMAP server before the answer (services.actions)."""

from __future__ import annotations

from enum import Enum

import strawberry
from starlette.concurrency import run_in_threadpool

from imap2api.errors import NotFound, ValidationFailed
from imap2api.graphql.context import Context
from imap2api.graphql.types.email import EmailType, to_gql_email
from imap2api.ids import parse_id
from imap2api.services import actions, mail
from imap2api.sync.write import FlagChange

Info = strawberry.Info[Context, None]

FLAGS_DOC = (
    "seen, flagged, answered: set (true) or clear (false) \\\\Seen, \\\\Flagged, \\\\Answered; flagsAdd, "
    "flagsRemove: other flags (system flags such as \\\\Draft, or keywords such as $Label1)."
)


@strawberry.enum(description="What batchEmails does to every email it names.")
class EmailAction(Enum):
    MODIFY = actions.MODIFY
    MOVE = actions.MOVE
    DELETE = actions.DELETE


@strawberry.type(description="What became of one email of a batchEmails.")
class EmailActionResult:
    id: strawberry.ID
    status: str = strawberry.field(description="ok, not_found or failed.")
    code: str = strawberry.field(description="Why it failed (blank if it did not): NOT_FOUND, IMAP_... .")
    detail: str


def _flags(
    seen: bool | None,
    flagged: bool | None,
    answered: bool | None,
    flags_add: list[str] | None,
    flags_remove: list[str] | None,
) -> FlagChange:
    """The validated flag change of a mutation's arguments."""
    return actions.flag_change(
        seen=seen,
        flagged=flagged,
        answered=answered,
        flags_add=flags_add or (),
        flags_remove=flags_remove or (),
    )


async def _reread(info: Info, email_id: int) -> EmailType | None:
    """The email as the mirror has it now (None: it left the mirror, e.g. moved to an unmirrored folder)."""
    info.context.fresh_loaders()
    try:
        return to_gql_email(await info.context.run(mail.get, email_id))
    except NotFound:
        return None


@strawberry.type
class EmailActionMutation:
    """Acting on mail."""

    @strawberry.mutation(
        description="Change an email's flags on the IMAP server; answers it as mirrored. " + FLAGS_DOC
    )
    async def update_email(
        self,
        info: Info,
        id: strawberry.ID,
        seen: bool | None = None,
        flagged: bool | None = None,
        answered: bool | None = None,
        flags_add: list[str] | None = None,
        flags_remove: list[str] | None = None,
    ) -> EmailType:
        """UID STORE FLAGS.SILENT, then the folder's sync."""
        principal = info.context.principal
        email_id = parse_id(id)
        action = actions.Action(
            actions.MODIFY, flags=_flags(seen, flagged, answered, flags_add, flags_remove)
        )
        await run_in_threadpool(actions.act_on_one, principal, email_id, action)
        email = await _reread(info, email_id)
        if email is None:
            raise NotFound()
        return email

    @strawberry.mutation(
        description="Move an email to another folder of its server; it keeps its id. Null when that folder "
        "is not mirrored (the email left the mirror, with email.deleted)."
    )
    async def move_email(self, info: Info, id: strawberry.ID, folder: str) -> EmailType | None:
        """UID MOVE, or COPY + \\Deleted + UID EXPUNGE; then the sync of both folders."""
        principal = info.context.principal
        email_id = parse_id(id)
        await run_in_threadpool(
            actions.act_on_one, principal, email_id, actions.Action(actions.MOVE, folder=folder)
        )
        return await _reread(info, email_id)

    @strawberry.mutation(
        description="Delete an email: to the server's Trash, or expunged when it is in the Trash already "
        "or with permanent."
    )
    async def delete_email(self, info: Info, id: strawberry.ID, permanent: bool = False) -> bool:
        """Moved to the Trash, or \\Deleted + UID EXPUNGE."""
        principal = info.context.principal
        email_id = parse_id(id)
        action = actions.Action(actions.DELETE, permanent=permanent)
        await run_in_threadpool(actions.act_on_one, principal, email_id, action)
        return True

    @strawberry.mutation(
        description=f"The same action on up to {actions.MAX_BATCH} emails: one IMAP command per folder. "
        "MODIFY takes the flag arguments, MOVE folder, DELETE permanent. " + FLAGS_DOC
    )
    async def batch_emails(
        self,
        info: Info,
        ids: list[strawberry.ID],
        action: EmailAction,
        seen: bool | None = None,
        flagged: bool | None = None,
        answered: bool | None = None,
        flags_add: list[str] | None = None,
        flags_remove: list[str] | None = None,
        folder: str | None = None,
        permanent: bool = False,
    ) -> list[EmailActionResult]:
        """A result per id, in the order given."""
        principal = info.context.principal
        email_ids = [parse_id(value) for value in ids]
        if action == EmailAction.MODIFY:
            todo = actions.Action(
                actions.MODIFY, flags=_flags(seen, flagged, answered, flags_add, flags_remove)
            )
        elif action == EmailAction.MOVE:
            if not folder:
                raise ValidationFailed({"folder": ["This field is required."]})
            todo = actions.Action(actions.MOVE, folder=folder)
        else:
            todo = actions.Action(actions.DELETE, permanent=permanent)
        outcomes = await run_in_threadpool(actions.act, principal, email_ids, todo)
        return [
            EmailActionResult(id=strawberry.ID(str(o.id)), status=o.status, code=o.code, detail=o.detail)
            for o in outcomes
        ]
