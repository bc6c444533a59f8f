"""Why a distribution cannot start or go on: each error's message tells the director what
happened and what to do."""

from __future__ import annotations

from bot.i18n import _
from bot.services.errors import ServiceError


class DistributionError(ServiceError):
    """A distribution that cannot start (the message says why and what to do)."""


class NoScopeError(DistributionError):
    """No class, level or `ecole` was named."""


class StalePlanError(DistributionError):
    """Accounts changed since the preview was shown: nothing was done; plan again."""


class NothingToDistributeError(DistributionError):
    """The confirmed plan has nobody left to send to."""


def stale_plan_error() -> StalePlanError:
    """The error for a plan that changed between the preview and its confirmation."""
    return StalePlanError(
        _(
            "Some accounts changed since the preview (another send, an activation or a new "
            "import), so nothing was done. Ask again to see the up-to-date preview."
        )
    )
