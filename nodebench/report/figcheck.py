"""Layout checks of a drawn figure: text that overlaps other text or a legend or leaves the canvas, and
axes without labels.

The figure is drawn once on an Agg canvas at its own dpi; every text artist that the draw actually
renders (titles, suptitles, axis and tick labels, legend texts, annotations, offset texts) is recorded
with its extent in pixels as matplotlib's renderer computes it. Extents scale with the dpi, so the
verdict does not depend on it; it does not depend on timing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from unittest import mock

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

#: Pixels two extents may share (both ways) and still count as touching, not overlapping; and how far
#: a text may reach past the canvas edge (antialiasing).
TOUCH_PX = 1.0


@dataclass
class DrawnText:
    """A rendered text: the artist, its extent in pixels and a name for messages."""

    artist: Text
    extent: Bbox
    name: str


def _name(text: Text, fig: Figure) -> str:
    """Where a text sits, for messages: its axes' title or its role."""
    owner = text.axes
    where = ""
    if owner is not None:
        index = fig.axes.index(owner) if owner in fig.axes else -1
        where = f"axes {index} ({owner.get_title() or owner.get_ylabel() or 'untitled'!r}) "
    return f"{where}text {text.get_text()!r}"


def drawn_texts(fig: Figure) -> tuple[list[DrawnText], list[tuple[Legend, Bbox]]]:
    """Draw ``fig`` on an Agg canvas; the texts the draw rendered and the legends' frames, with their
    extents in pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    found: list[DrawnText] = []
    original = Text.draw

    def record(self: Text, renderer: Any) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            found.append(DrawnText(self, self.get_window_extent(renderer), _name(self, fig)))

    with mock.patch.object(Text, "draw", record):
        canvas.draw()
    renderer = canvas.get_renderer()
    legends = [
        (legend, legend.get_window_extent(renderer))
        for legend in fig.findobj(Legend)
        if legend.get_visible() and legend.get_figure(root=True) is fig
    ]
    return found, legends


def _overlap(a: Bbox, b: Bbox) -> tuple[float, float]:
    """Width and height of the intersection of two extents (negative: a gap)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)


def text_problems(fig: Figure, touch: float = TOUCH_PX) -> list[str]:
    """Texts that leave the canvas, pairs of texts that overlap by more than ``touch`` pixels, and
    legend frames that cover another text or legend.

    Arguments:
        fig: the figure (drawn here).
        touch: pixels of shared extent (in both directions) still counted as touching.

    Returns:
        One message per problem; empty when the layout is clean.
    """
    texts, legends = drawn_texts(fig)
    width, height = fig.bbox.width, fig.bbox.height
    problems = []
    for t in texts:
        e = t.extent
        if e.x0 < -touch or e.y0 < -touch or e.x1 > width + touch or e.y1 > height + touch:
            problems.append(
                f"{t.name} leaves the canvas: extent x {e.x0:.0f}..{e.x1:.0f}, y {e.y0:.0f}..{e.y1:.0f} "
                f"of {width:.0f} x {height:.0f} px"
            )
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            w, h = _overlap(a.extent, b.extent)
            if w > touch and h > touch:
                problems.append(f"{a.name} overlaps {b.name} ({w:.0f} x {h:.0f} px)")
    for i, (legend, frame) in enumerate(legends):
        own = {id(text) for text in [*legend.get_texts(), legend.get_title()]}
        title = legend.get_title().get_text() or "untitled"
        for t in texts:
            w, h = _overlap(frame, t.extent)
            if id(t.artist) not in own and w > touch and h > touch:
                problems.append(f"legend {title!r} covers {t.name} ({w:.0f} x {h:.0f} px)")
        for other, other_frame in legends[i + 1 :]:
            w, h = _overlap(frame, other_frame)
            if w > touch and h > touch:
                other_title = other.get_title().get_text() or "untitled"
                problems.append(f"legend {title!r} overlaps legend {other_title!r} ({w:.0f} x {h:.0f} px)")
    return problems


def _has_suplabel(fig: Any, which: str) -> bool:
    """Whether ``fig`` or a figure around it (subfigures) carries a ``supxlabel`` / ``supylabel``."""
    while fig is not None:
        label = getattr(fig, f"_sup{which}label", None)
        if label is not None and label.get_visible() and label.get_text().strip():
            return True
        parent = getattr(fig, "_parent", None)
        fig = parent if parent is not fig else None
    return False


def _shows_ticklabels(axis: Any) -> bool:
    return axis.get_visible() and any(t.get_visible() and t.get_text() for t in axis.get_ticklabels())


def label_problems(fig: Figure) -> list[str]:
    """Axes showing tick labels on an axis without a label there (nor a sup-label on their figure).

    Call after drawing (:func:`text_problems` draws), so that tick labels are set.
    """
    problems = []
    for index, ax in enumerate(fig.axes):
        if not isinstance(ax, Axes) or not ax.get_visible() or not ax.axison:
            continue
        for which, axis, label in (("x", ax.xaxis, ax.get_xlabel()), ("y", ax.yaxis, ax.get_ylabel())):
            if _shows_ticklabels(axis) and not label.strip() and not _has_suplabel(ax.get_figure(), which):
                problems.append(f"axes {index} ({ax.get_title()!r}) has no {which} label")
    return problems


def layout_problems(fig: Figure) -> list[str]:
    """:func:`text_problems` and :func:`label_problems` of ``fig``."""
    return text_problems(fig) + label_problems(fig)
