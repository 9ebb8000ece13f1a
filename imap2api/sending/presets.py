"""SMTP settings of well-known providers, filled in from the IMAP host when the owner gives none.

A preset applies when a server is created (or its IMAP host changes) and no SMTP host is given:
it fills ``smtp_host``, ``smtp_port``, ``smtp_security`` and ``save_sent``, each unless given.
``save_sent`` is false where the provider files what its SMTP server takes in the Sent folder
itself (Gmail does; so does Exchange Online for SMTP AUTH submissions): a second copy would be a
duplicate. The list is short on purpose: hosts whose published settings are stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from imap2api.enums import SmtpSecurity


@dataclass(frozen=True)
class SmtpPreset:
    """A provider's submission server and whether it files sent mail itself."""

    host: str
    port: int
    security: SmtpSecurity
    save_sent: bool = True


_SSL, _STARTTLS = SmtpSecurity.SSL, SmtpSecurity.STARTTLS

# IMAP host (as validation stores it: lower-case ASCII) → the provider's SMTP submission settings.
PRESETS: dict[str, SmtpPreset] = {
    "imap.gmail.com": SmtpPreset("smtp.gmail.com", 465, _SSL, save_sent=False),
    "imap.googlemail.com": SmtpPreset("smtp.gmail.com", 465, _SSL, save_sent=False),
    "outlook.office365.com": SmtpPreset("smtp.office365.com", 587, _STARTTLS, save_sent=False),
    "imap-mail.outlook.com": SmtpPreset("smtp-mail.outlook.com", 587, _STARTTLS, save_sent=False),
    "imap.mail.yahoo.com": SmtpPreset("smtp.mail.yahoo.com", 465, _SSL),
    "imap.aol.com": SmtpPreset("smtp.aol.com", 465, _SSL),
    "imap.mail.me.com": SmtpPreset("smtp.mail.me.com", 587, _STARTTLS),
    "imap.fastmail.com": SmtpPreset("smtp.fastmail.com", 465, _SSL),
    "imap.zoho.com": SmtpPreset("smtp.zoho.com", 465, _SSL),
    "imap.zoho.eu": SmtpPreset("smtp.zoho.eu", 465, _SSL),
    "imap.gmx.com": SmtpPreset("mail.gmx.com", 587, _STARTTLS),
    "imap.gmx.net": SmtpPreset("mail.gmx.net", 587, _STARTTLS),
    "imap.web.de": SmtpPreset("smtp.web.de", 587, _STARTTLS),
    "imap.mailbox.org": SmtpPreset("smtp.mailbox.org", 465, _SSL),
    "imap.yandex.com": SmtpPreset("smtp.yandex.com", 465, _SSL),
}


def preset_for(imap_host: str) -> SmtpPreset | None:
    """The preset for an IMAP host, if it is a well-known one."""
    return PRESETS.get(imap_host.strip().lower().rstrip("."))


def fill_smtp(clean: dict[str, object], imap_host: str, *, given: set[str]) -> None:
    """Fill the SMTP settings the caller did not give (``given``) from the IMAP host's preset, if any."""
    preset = preset_for(imap_host)
    if preset is None:
        return
    clean["smtp_host"] = preset.host
    for name, value in (
        ("smtp_port", preset.port),
        ("smtp_security", preset.security.value),
        ("save_sent", preset.save_sent),
    ):
        if name not in given or clean.get(name) is None:
            clean[name] = value
