"""The program's name and the arguments and options several commands share, with their help.

Help texts are translated when this module is imported, in the default language (French).
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.i18n import _

PROG_NAME = "educonnect-bot"

JsonOption = Annotated[bool, typer.Option("--json", help=_("Print only JSON, for scripts."))]
UaiArgument = Annotated[str, typer.Argument(help=_("UAI of the school, for example 0751234X."))]
