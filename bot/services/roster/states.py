"""The four account states as a director sees them: the lights of the official « état des
comptes » and their labels."""

from __future__ import annotations

from typing import Protocol

from bot.i18n import N_, _, format_number, format_percentage
from models import AccountState

# docs/PRODUCT.md: the four lights of the official « état des comptes ».
STATE_LIGHTS: dict[AccountState, str] = {
    AccountState.NOT_NOTIFIED: "🔴",
    AccountState.NOTIFIED: "🟠",
    AccountState.ACTIVATING: "🟡",
    AccountState.ACTIVATED: "🟢",
}
# The labels of the official tool (« Non notifié »…); the French catalog gives them verbatim.
STATE_LABELS: dict[AccountState, str] = {
    AccountState.NOT_NOTIFIED: N_("Not notified"),
    AccountState.NOTIFIED: N_("Notified, not activated"),
    AccountState.ACTIVATING: N_("Activation in progress"),
    AccountState.ACTIVATED: N_("Activated"),
}


def state_label(state: AccountState) -> str:
    """The label of a state in the current language (« Non notifié » in French)."""
    return _(STATE_LABELS[state])


class StateCounts(Protocol):
    """Accounts per state and pupils covered, as `/etat` and the digests show them."""

    @property
    def accounts(self) -> int: ...
    @property
    def activated(self) -> int: ...
    @property
    def pupils(self) -> int: ...
    @property
    def pupils_with_activated_guardian(self) -> int: ...

    def by_state(self) -> dict[AccountState, int]: ...


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def lights_and_percentages(counts: StateCounts) -> list[str]:
    """One line per light with its count, then the two percentages of the official « état des
    comptes » (HTML, in the current language): what `/etat` and the digests both say."""
    lines = [
        _("{light} {label}: {count}").format(
            light=STATE_LIGHTS[state], label=state_label(state), count=format_number(number)
        )
        for state, number in counts.by_state().items()
    ]
    lines.append(
        _("Guardian accounts activated: <b>{percent}</b> ({activated} of {accounts})").format(
            percent=format_percentage(_ratio(counts.activated, counts.accounts)),
            activated=format_number(counts.activated),
            accounts=format_number(counts.accounts),
        )
    )
    lines.append(
        _(
            "Pupils with at least one guardian whose account is activated: <b>{percent}</b> "
            "({covered} of {pupils})"
        ).format(
            percent=format_percentage(_ratio(counts.pupils_with_activated_guardian, counts.pupils)),
            covered=format_number(counts.pupils_with_activated_guardian),
            pupils=format_number(counts.pupils),
        )
    )
    return lines
