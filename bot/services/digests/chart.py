"""The digest's chart: the accounts of each class, stacked by state in the lights' colours, as
a PNG. `chart_data` is what is drawn (checked by the tests before any pixel); `render_chart`
draws it with matplotlib's Agg canvas (no pyplot, no global state: safe in a worker thread),
imported at the first chart.
CPU-bound, a few hundred milliseconds (bench/RESULTS.md): callers on the event loop run it in
a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from bot.i18n import format_percentage
from bot.services.digests.content import ClassProgress, DigestContent
from bot.services.roster import state_label
from models import AccountState

# The lights of the « état des comptes »: 🔴 🟠 🟡 🟢.
STATE_COLOURS: dict[AccountState, str] = {
    AccountState.NOT_NOTIFIED: "#d93025",
    AccountState.NOTIFIED: "#f28b00",
    AccountState.ACTIVATING: "#f9c80e",
    AccountState.ACTIVATED: "#1e8e3e",
}
# Inches: a bar's height, and what the title, axis and legend take whatever the classes.
_BAR_HEIGHT = 0.34
_FRAME_HEIGHT = 1.9
_WIDTH = 8.0
_DPI = 110
_MAX_LABEL = 22


@dataclass(frozen=True)
class ChartSeries:
    """One state's segment of every bar."""

    state: AccountState
    colour: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class ChartData:
    """What the chart draws: one bar per class, in school order (the whole school when it
    has no class) — or per school of a district — stacked by state, with the share of
    activated accounts at its end."""

    labels: tuple[str, ...]
    series: tuple[ChartSeries, ...]
    activated_percent: tuple[float, ...]

    def values(self, state: AccountState) -> tuple[int, ...]:
        """The segment of each bar for `state`."""
        return next(series.values for series in self.series if series.state is state)


def chart_data(content: DigestContent) -> ChartData:
    """The bars of the digest's chart."""
    groups: tuple[ClassProgress, ...] = content.classes or (content.total,)
    return ChartData(
        labels=tuple(group.label for group in groups),
        series=tuple(
            ChartSeries(
                state, STATE_COLOURS[state], tuple(group.by_state()[state] for group in groups)
            )
            for state in AccountState
        ),
        activated_percent=tuple(group.activated_percent for group in groups),
    )


def _short(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def render_chart(content: DigestContent, *, title: str) -> bytes:
    """The digest's chart as a PNG; `title` says the school and the LSU date, in the reader's
    language. A school with 30 classes stays readable: the image grows with the number of
    bars."""
    return render_bars(chart_data(content), title=title)


def render_bars(data: ChartData, *, title: str) -> bytes:
    """`data` drawn as horizontal bars stacked by state, first bar at the top, as a PNG (a
    school's classes, or a district's schools)."""
    # matplotlib takes ≈ 0.6 s to import: only the processes that draw a chart pay for it (a
    # CLI command or a worker never does; tests/test_layout.py lists the imports allowed here).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    count = len(data.labels)
    figure = Figure(
        figsize=(_WIDTH, _FRAME_HEIGHT + _BAR_HEIGHT * count), dpi=_DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # First bar at the top, as in /etat.
    positions = [count - 1 - index for index in range(count)]
    left = [0] * count
    for series in data.series:
        axes.barh(
            positions,
            series.values,
            left=left,
            color=series.colour,
            height=0.72,
            label=state_label(series.state),
        )
        left = [start + value for start, value in zip(left, series.values, strict=True)]
    widest = max(left, default=0) or 1
    for position, total, percent in zip(positions, left, data.activated_percent, strict=True):
        axes.text(
            total + widest * 0.01,
            position,
            format_percentage(percent / 100),
            va="center",
            fontsize=8,
        )
    axes.set_yticks(positions, [_short(label) for label in data.labels], fontsize=9)
    axes.set_xlim(0, widest * 1.12)
    axes.set_ylim(-0.7, count - 0.3)
    axes.spines[["top", "right"]].set_visible(False)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title, fontsize=11, x=0.02, ha="left")
    axes.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=len(data.series),
        fontsize=8,
        frameon=False,
    )
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
