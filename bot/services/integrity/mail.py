"""The outbox's invariants: each row's state agrees with its fields (a sent body erased, a
claim only while sending), nothing waits on a dead sender, and no e-mail is lost — a credential
e-mail accepted by the server made its account notified, and the reverse."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, exists, or_, select

from bot.i18n import N_
from bot.services.integrity.invariant import Context, Invariant, table
from bot.services.mail import CREDENTIAL_KIND_VALUES, DEFAULT_LEASE
from models import Account, AccountState, DistributionChannel, OutboxMessage, OutboxStatus

ACCOUNT = table(Account)
OUTBOX = table(OutboxMessage)
_CREDENTIALS = sorted(CREDENTIAL_KIND_VALUES)
_FINISHED = [OutboxStatus.SENT.value, OutboxStatus.FAILED.value, OutboxStatus.CANCELLED.value]


def _in_status(status: OutboxStatus, *broken: Any) -> Select[Any]:
    return select(OUTBOX.c.id).where(OUTBOX.c.status == status.value, or_(*broken))


def _body_kept(_context: Context) -> Select[Any]:
    # The body may carry a provisional password: it lives only while the e-mail is in flight.
    return select(OUTBOX.c.id).where(OUTBOX.c.status.in_(_FINISHED), OUTBOX.c.body.is_not(None))


def _sent_without_date(_context: Context) -> Select[Any]:
    return _in_status(OutboxStatus.SENT, OUTBOX.c.sent_at.is_(None))


def _pending_inconsistent(_context: Context) -> Select[Any]:
    return _in_status(
        OutboxStatus.PENDING,
        OUTBOX.c.body.is_(None),
        OUTBOX.c.claimed_by.is_not(None),
        OUTBOX.c.claimed_at.is_not(None),
    )


def _sending_inconsistent(_context: Context) -> Select[Any]:
    return _in_status(
        OutboxStatus.SENDING,
        OUTBOX.c.body.is_(None),
        OUTBOX.c.claimed_by.is_(None),
        OUTBOX.c.claimed_at.is_(None),
    )


def _sending_abandoned(context: Context) -> Select[Any]:
    # A live sender renews its claims every third of the lease; recovery at any sender's
    # start takes these back.
    return select(OUTBOX.c.id).where(
        OUTBOX.c.status == OutboxStatus.SENDING.value,
        OUTBOX.c.claimed_at < context.now - DEFAULT_LEASE,
    )


def _credential_mail(account_id: Any, *statuses: OutboxStatus) -> Any:
    found = exists().where(OUTBOX.c.account_id == account_id, OUTBOX.c.kind.in_(_CREDENTIALS))
    if statuses:
        found = found.where(OUTBOX.c.status.in_([status.value for status in statuses]))
    return found


def _sent_but_not_notified(_context: Context) -> Select[Any]:
    # Marked in the transaction that records the e-mail as sent (a deactivated account is not).
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.state == AccountState.NOT_NOTIFIED.value,
        ACCOUNT.c.deactivated_at.is_(None),
        _credential_mail(ACCOUNT.c.id, OutboxStatus.SENT),
    )


def _notified_by_email_without_mail(_context: Context) -> Select[Any]:
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.distribution_channel == DistributionChannel.EMAIL.value,
        ~_credential_mail(ACCOUNT.c.id, OutboxStatus.SENT),
    )


def _credentials_never_queued(_context: Context) -> Select[Any]:
    # A password drawn for a family never notified reaches it by e-mail (written with the
    # password, in one transaction) or on paper (notified at once).
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.state == AccountState.NOT_NOTIFIED.value,
        ACCOUNT.c.password_hash.is_not(None),
        ~_credential_mail(ACCOUNT.c.id),
    )


_DEVELOPERS = N_("Tell the developers with the codes and ids above: no service writes this.")
_SEND_AGAIN = N_(
    "Send the credentials again to the classes concerned (« educonnect-bot send UAI CLASS »): "
    "the families who never got them get a first e-mail."
)

INVARIANTS = (
    Invariant(
        code="mail.body_not_erased",
        subject="outbox_message",
        description=N_(
            "E-mails sent, failed or cancelled whose content is still stored: it may hold a "
            "provisional password in clear."
        ),
        advice=_DEVELOPERS,
        query=_body_kept,
    ),
    Invariant(
        code="mail.sent_without_date",
        subject="outbox_message",
        description=N_("E-mails recorded as sent without the time they were sent."),
        advice=_DEVELOPERS,
        query=_sent_without_date,
    ),
    Invariant(
        code="mail.pending_inconsistent",
        subject="outbox_message",
        description=N_(
            "E-mails waiting to be sent that have no content, or that a sender still claims."
        ),
        advice=_DEVELOPERS,
        query=_pending_inconsistent,
    ),
    Invariant(
        code="mail.sending_inconsistent",
        subject="outbox_message",
        description=N_("E-mails being sent with no content or no sender claiming them."),
        advice=_DEVELOPERS,
        query=_sending_inconsistent,
    ),
    Invariant(
        code="mail.sending_abandoned",
        subject="outbox_message",
        description=N_(
            "E-mails left « being sent » by a sender that stopped more than two minutes ago: "
            "they wait until a sender starts."
        ),
        advice=N_(
            "Start the bot, or run « educonnect-bot worker --once »: a starting sender puts "
            "them back in the queue and sends them."
        ),
        query=_sending_abandoned,
    ),
    Invariant(
        code="mail.sent_but_not_notified",
        subject="account",
        description=N_(
            "Accounts whose credentials e-mail the mail server accepted, still shown as not "
            "notified (🔴)."
        ),
        advice=_DEVELOPERS,
        query=_sent_but_not_notified,
    ),
    Invariant(
        code="mail.notified_by_email_without_mail",
        subject="account",
        description=N_(
            "Accounts recorded as notified by e-mail for which no credentials e-mail was ever "
            "sent: the family may have received nothing."
        ),
        advice=N_(
            "Send these families their credentials again (« educonnect-bot send UAI CLASS "
            "--reset »), or print their letters."
        ),
        query=_notified_by_email_without_mail,
    ),
    Invariant(
        code="mail.credentials_never_queued",
        subject="account",
        description=N_(
            "Accounts never notified that hold a provisional password no e-mail carries: the "
            "password was drawn and its e-mail lost."
        ),
        advice=_SEND_AGAIN,
        query=_credentials_never_queued,
    ),
)
