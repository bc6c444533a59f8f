"""The accounts export: one CSV row per guardian account of a school, for the director's
spreadsheet. Never a password or a hash; safe against spreadsheet formula injection; UTF-8
with a byte-order mark and « ; » separators, so French Excel opens it with its accents.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.i18n import N_, _, use_language
from bot.services.audit import record_event
from bot.services.roster.states import STATE_LIGHTS, state_label
from models import AccountState, DistributionChannel, School, utcnow
from models.queries import ChildRow, GuardianRow, children_of, school_accounts

# A cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS: tuple[str, ...] = (
    N_("Civility"),
    N_("Last name"),
    N_("Usage name"),
    N_("First name"),
    N_("E-mail"),
    N_("Mobile phone"),
    N_("Home phone"),
    N_("Work phone"),
    N_("Children"),
    N_("Classes"),
    N_("Identifier"),
    N_("State"),
    N_("Light"),
    N_("Distributed on"),
    N_("Channel"),
    N_("Activated on"),
    N_("Deactivated on"),
)
_CHANNELS: dict[DistributionChannel, str] = {
    DistributionChannel.EMAIL: N_("e-mail"),
    DistributionChannel.PAPER: N_("paper letter"),
}


@dataclass(frozen=True)
class AccountsExport:
    """The CSV file, ready to send."""

    filename: str
    content: bytes
    rows: int


def neutralise_cell(value: str) -> str:
    """`value`, made inert for spreadsheets: a leading `=`, `+`, `-`, `@`, tab or carriage
    return gets a `'` in front, so « =HYPERLINK(…) » shows as text instead of running."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _when(moment: datetime | None, tz: ZoneInfo, *, with_time: bool) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return local.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def _child(child: ChildRow) -> str:
    name = f"{child.first_name} {child.last_name}"
    return f"{name} ({child.class_label})" if child.class_label else name


def _row(account: GuardianRow, children: list[ChildRow], tz: ZoneInfo) -> list[str]:
    state = AccountState(account.state)
    channel = account.distribution_channel
    classes = dict.fromkeys(child.class_label for child in children if child.class_label)
    return [
        account.civility or "",
        account.last_name,
        account.usage_name or "",
        account.first_name,
        account.email or "",
        account.phone_mobile or "",
        account.phone_home or "",
        account.phone_work or "",
        ", ".join(_child(child) for child in children),
        ", ".join(classes),
        account.identifier,
        state_label(state),
        STATE_LIGHTS[state],
        _when(account.distributed_at, tz, with_time=True),
        _(_CHANNELS[DistributionChannel(channel)]) if channel else "",
        _when(account.activated_at, tz, with_time=True),
        _when(account.deactivated_at, tz, with_time=False),
    ]


def export_accounts(
    session: Session,
    *,
    school_id: int,
    actor: str,
    tz: ZoneInfo | None = None,
    today: date | None = None,
    language: str = "fr",
) -> AccountsExport:
    """The CSV of every account of the school (`comptes-<UAI>-<date>.csv`), in `language`;
    records an `accounts.exported` audit event naming who exported how many rows."""
    school = session.get(School, school_id)
    if school is None:
        raise LookupError(f"no school with id {school_id}")
    tz = tz or ZoneInfo("Europe/Paris")
    today = today or utcnow().astimezone(tz).date()
    accounts = school_accounts(session, school_id)
    children = children_of(session, [account.guardian_id for account in accounts])
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    with use_language(language):
        writer.writerow([_(title) for title in COLUMNS])
        for account in accounts:
            row = _row(account, children.get(account.guardian_id, []), tz)
            writer.writerow([neutralise_cell(cell) for cell in row])
    record_event(
        session,
        actor=actor,
        action="accounts.exported",
        school_id=school_id,
        rows=len(accounts),
    )
    return AccountsExport(
        filename=f"comptes-{school.uai}-{today.isoformat()}.csv",
        # The byte-order mark is what makes Excel read UTF-8 rather than the ANSI code page.
        content=buffer.getvalue().encode("utf-8-sig"),
        rows=len(accounts),
    )
