"""The four account states as a director sees them: the lights of the official « état des
comptes » and their labels."""

from __future__ import annotations

from bot.i18n import N_, _
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
