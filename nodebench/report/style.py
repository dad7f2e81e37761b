"""One visual language for every report figure, and the registry of the figure functions.

- **colour = method**: a solver method (dopri5, adams, ...) has one colour in every figure. Models
  are methods too: ODE models take the colour of the solver they ran (ODE-Net and the latent ODE
  dopri5's blue, or adams' orange when trained with adams; RK-Net rk4's brown), the others have
  colours no solver uses.
- **marker and line style = library**: nodebench circles and solid lines, torchdiffeq squares and
  dashed lines, scipy triangles and dotted lines, torchode down-triangles and dash-dotted lines.
- **shade = an ordered secondary value** (tolerance, epoch, gradient mode, repeated run): shades of the
  method's colour from light (loose tolerance, early epoch) to dark. Legends list only the values that
  were drawn, one entry each (categorical, never binned).
- Spread over seeds: mean ± one sample sd on a linear axis; on a log axis the geometric mean ×/÷ one
  geometric sd (:func:`spread`), since mean - sd can reach zero or below, which a log axis cannot show.
- References: the ground truth light grey, observations black dots, the paper's values black, guide
  lines (y = x) grey.

Figure functions take tidy frames and return a :class:`~matplotlib.figure.Figure` (no pyplot state);
:func:`figure_function` registers them in :data:`FIGURES`, over which the layout test runs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn, not with the report package
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D

#: Solver methods (tab10, then darker tab20b hues for the rarer ones).
METHOD_COLOURS = {
    "dopri5": "#1f77b4",
    "adams": "#ff7f0e",
    "euler": "#2ca02c",
    "tsit5": "#d62728",
    "bosh3": "#9467bd",
    "rk4": "#8c564b",
    "dopri8": "#e377c2",
    "fehlberg2": "#bcbd22",
    "adaptive_heun": "#17becf",
    "lsoda": "#393b79",
    "vode": "#637939",
    "midpoint": "#e7ba52",
    # Stiff solvers (issue 26): nodebench's radau and ndf share a colour with scipy's Radau and BDF (an NDF).
    "radau": "#843c39",
    "Radau": "#843c39",
    "ndf": "#3182bd",
    "BDF": "#3182bd",
    "bdf": "#31a354",
    "LSODA": "#393b79",
}
#: Models: ODE models in their solver's colour, the others in colours no solver has.
MODEL_COLOURS = {
    "odenet": METHOD_COLOURS["dopri5"],
    "latent_ode": METHOD_COLOURS["dopri5"],
    "rknet": METHOD_COLOURS["rk4"],
    "mlp": "#7f7f7f",
    "resnet": "#7b4173",
    "rnn_tanh": "#d6616b",
    "rnn_tanh_nodt": "#843c39",
    "gru": "#8c6d31",
}
COLOURS = {**METHOD_COLOURS, **MODEL_COLOURS}
#: Colours for names neither table knows, handed out in order within a figure.
SPARE_COLOURS = ("#6b6ecf", "#b5cf6b", "#ce6dbd", "#9c9ede", "#e7969c", "#cedb9c", "#000000")

TRUTH = "0.6"  # ground truth
OBSERVED = "black"  # observations
PAPER = "black"  # the paper's values
GUIDE = "0.45"  # guide lines such as y = x


class LibraryStyle(NamedTuple):
    marker: str
    linestyle: Any


LIBRARY_STYLES = {
    "nodebench": LibraryStyle("o", "-"),
    "torchdiffeq": LibraryStyle("s", "--"),
    "scipy": LibraryStyle("^", ":"),
    "torchode": LibraryStyle("v", "-."),
    "nodebench_stiff": LibraryStyle("o", "-"),
    "scipy_stiff": LibraryStyle("^", ":"),
}
#: Lines that are no library's solve (a ResNet, a recurrent network).
NO_LIBRARY = LibraryStyle("D", "-")

FIGURES: dict[str, Callable[..., Any]] = {}
F = TypeVar("F", bound=Callable[..., Any])


def figure_function(fn: F) -> F:
    """Register a figure function (``module.name`` in :data:`FIGURES`); it returns a Figure."""
    FIGURES[f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__qualname__}"] = fn
    return fn


def colour(name: str) -> str:
    """The colour of a method or model (a stable spare colour for names no table knows)."""
    if name in COLOURS:
        return COLOURS[name]
    return SPARE_COLOURS[zlib.crc32(name.encode()) % len(SPARE_COLOURS)]


def palette(names: Iterable[str]) -> dict[str, str]:
    """Colours of ``names`` (methods or models): the fixed ones, and distinct spares for the others."""
    names = list(dict.fromkeys(names))
    spare = iter(c for c in SPARE_COLOURS if c not in {COLOURS.get(n) for n in names})
    return {name: COLOURS[name] if name in COLOURS else next(spare, "#000000") for name in names}


def library_style(library: str | None) -> LibraryStyle:
    """Marker and line style of a library (:data:`NO_LIBRARY` for ``None`` or unknown names)."""
    return LIBRARY_STYLES.get(library or "", NO_LIBRARY)


def split_solver(name: str) -> tuple[str | None, str]:
    """``(library, method)`` of a solver name such as ``nodebench/dopri5``, ``torchdiffeq dopri5`` or
    ``mnist_odenet/nodebench/adams``; ``(None, name)`` when no library is named."""
    parts = name.replace(" ", "/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part in LIBRARY_STYLES:
            return part, parts[i + 1]
    return None, parts[-1]


def mix(base: Any, other: Any, amount: float) -> tuple[float, float, float]:
    """``base`` moved ``amount`` (0..1) of the way towards ``other``."""
    from matplotlib.colors import to_rgb

    a, b = np.array(to_rgb(base)), np.array(to_rgb(other))
    return tuple(float(v) for v in a + (b - a) * amount)  # type: ignore[return-value]


def lighter(base: Any, amount: float = 0.55) -> tuple[float, float, float]:
    """``base`` mixed with white."""
    return mix(base, "white", amount)


def shades(base: Any, n: int) -> list[tuple[float, float, float]]:
    """``n`` shades of ``base`` from light to dark (just ``base`` for ``n = 1``)."""
    from matplotlib.colors import to_rgb

    if n <= 1:
        return [tuple(to_rgb(base))] * n  # type: ignore[list-item]
    out = []
    for x in np.linspace(-0.62, 0.32, n):  # negative: towards white, positive: towards black
        out.append(lighter(base, -x) if x < 0 else mix(base, "black", x))
    return out


def shade_map(values: Sequence[Any], base: Any, *, reverse: bool = False) -> dict[Any, Any]:
    """Each of the sorted distinct ``values`` with its shade of ``base``, light first (``reverse``:
    the largest value lightest, e.g. tolerances, loosest first)."""
    ordered = sorted(set(values), reverse=reverse)
    return dict(zip(ordered, shades(base, len(ordered))))


def handle(
    label: str, colour: Any = "black", *, marker: str | None = None, linestyle: Any = "", **kw
) -> Line2D:
    """A legend entry (a line, a marker or both)."""
    from matplotlib.lines import Line2D

    kw.setdefault("markersize", 6)
    return Line2D([], [], color=colour, marker=marker, linestyle=linestyle, label=label, **kw)


def solver_handle(library: str | None, method: str, label: str | None = None, *, line: bool = True) -> Line2D:
    """The legend entry of one solver: its method's colour, its library's marker and line style."""
    style = library_style(library)
    text = label if label is not None else " ".join(p for p in (library, method) if p)
    return handle(text, colour(method), marker=style.marker, linestyle=style.linestyle if line else "")


def tolerance_label(tol: float) -> str:
    """``1e-3``-style text of a tolerance."""
    return f"{tol:.0e}".replace("e-0", "e-").replace("e+0", "e")


def shade_handles(
    labels: Sequence[str], base: Any = "0.35", *, marker: str | None = "o", linestyle: Any = ""
) -> list[Line2D]:
    """Legend entries of an ordered secondary value drawn as shades (light to dark), in ``base``'s
    shades (grey by default: the shade, not the hue, is what they say); markers, or lines if
    ``linestyle`` is given."""
    if linestyle:
        marker = None
    colours = shades(base, len(labels))
    return [handle(text, c, marker=marker, linestyle=linestyle) for text, c in zip(labels, colours)]


def categorical_legend(target: Any, handles: Sequence[Line2D], title: str | None = None, **kw: Any) -> Any:
    """A legend listing exactly ``handles`` (the values drawn), in small type.

    Arguments:
        target: an Axes, or a Figure (then ``loc`` may be ``"outside right upper"`` etc.).
        handles: the entries (:func:`handle`, :func:`solver_handle`, :func:`shade_handles`).
        title: the legend's title.
        kw: more :meth:`~matplotlib.axes.Axes.legend` options.

    Returns:
        The legend.
    """
    from matplotlib.axes import Axes

    kw.setdefault("fontsize", "small")
    kw.setdefault("title_fontsize", "small")
    if isinstance(target, Axes) and target.get_legend() is not None:
        target.add_artist(target.get_legend())  # a second legend on the same axes keeps the first
    return target.legend(handles=list(handles), title=title, **kw)


def log_axis(ax: Axes, x: bool = False, y: bool = True) -> None:
    """Log scale on the chosen axes, without labels on minor ticks (they overlap on short ranges)."""
    from matplotlib.ticker import NullFormatter

    for on, axis, scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if on:
            scale("log")
            axis.set_minor_formatter(NullFormatter())


def log_ticks(ax: Axes, axis: str = "y", decades: float = 2.5) -> None:
    """Plain-number ticks at 1, 2 and 5 times powers of ten on a log axis spanning at most ``decades``
    decades (wider spans keep one labelled tick per decade). Call once the limits are set."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    low, high = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    if low <= 0 or np.log10(high / low) > decades:
        return
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(NullFormatter())


def from_zero(ax: Axes, *, x: bool = False, y: bool = True) -> None:
    """Start a count axis at 0 so a rise reads at its true size (the top keeps a 5 % margin over the
    data drawn so far)."""
    if y and ax.dataLim.y1 > 0:
        ax.set_ylim(0, ax.dataLim.y1 * 1.05)
    if x and ax.dataLim.x1 > 0:
        ax.set_xlim(0, ax.dataLim.x1 * 1.05)


def value_ticks(ax: Axes, values: Iterable[float], axis: str = "x") -> None:
    """Ticks exactly at the discrete values that were run (e.g. n, L, epochs), labelled plainly."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    ticks = sorted(set(values))
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FixedFormatter([f"{v:g}" for v in ticks]))
    target.set_minor_formatter(NullFormatter())
    target.set_minor_locator(FixedLocator([]))


@dataclass
class Band:
    """One line with its band (``low``, ``high``; NaN where there is no spread)."""

    x: np.ndarray
    centre: np.ndarray
    low: np.ndarray
    high: np.ndarray
    colour: Any
    label: str | None = None
    linestyle: Any = "-"
    marker: str | None = None


def spread(values: Any, *, log: bool = False) -> tuple[float, float, float]:
    """Centre and band of a sample: mean ± sample sd, or on a log axis (``log``) the geometric mean
    ×/÷ the geometric sd (mean ± sd of the logarithms), which stays positive where mean - sd would not.
    Non-positive values have no logarithm and are left out of the log-axis statistics; one value (or
    none) has no band (NaN edges)."""
    data = np.asarray(values, float)
    data = data[np.isfinite(data) & (data > 0)] if log else data[np.isfinite(data)]
    if data.size == 0:
        return np.nan, np.nan, np.nan
    if log:
        logs = np.log(data)
        centre = float(np.exp(logs.mean()))
        factor = float(np.exp(logs.std(ddof=1))) if data.size > 1 else np.nan
        return centre, centre / factor, centre * factor
    centre = float(data.mean())
    sd = float(data.std(ddof=1)) if data.size > 1 else np.nan
    return centre, centre - sd, centre + sd


def group_bands(
    data: Any,
    x: str,
    y: str,
    keys: Sequence[str],
    styles: Callable[[tuple[Any, ...]], dict[str, Any]],
    *,
    log: bool = False,
) -> list[Band]:
    """One :class:`Band` per group of ``data``: :func:`spread` of ``y`` over the rows sharing ``x``
    (seeds), arithmetic or, with ``log``, geometric.

    Arguments:
        data: a tidy frame.
        x: the column along the line (step, epoch).
        y: the value column.
        keys: the columns that make one line.
        styles: per group key tuple, the Band's ``colour``, ``label``, ``linestyle``, ``marker``.
        log: geometric statistics, for a log axis.
    """
    out = []
    for key, group in data.groupby(list(keys), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        stats = group.groupby(x)[y].apply(lambda v: spread(v, log=log))
        if stats.empty:
            continue
        centre, low, high = (np.array([row[i] for row in stats]) for i in range(3))
        out.append(Band(stats.index.to_numpy(), centre, low, high, **styles(key)))
    return out


def lines_with_bands(ax: Axes, bands: Sequence[Band], *, log: bool = False, lw: float = 1.2) -> None:
    """Lines with their bands (:func:`group_bands`); with ``log`` on a log value axis whose limits are
    those of the lines and bands, with minor labels off and 1-2-5 labels on short spans.

    Arguments:
        ax: the axes.
        bands: the lines to draw.
        log: the value axis is logarithmic (set here); the bands should be geometric.
        lw: line width.
    """
    for band in bands:
        ax.plot(
            band.x,
            band.centre,
            color=band.colour,
            ls=band.linestyle,
            marker=band.marker,
            ms=3.5,
            lw=lw,
            label=band.label,
        )
        if np.isfinite(band.low).any():
            ax.fill_between(band.x, band.low, band.high, color=band.colour, alpha=0.18, lw=0)
    if log:
        log_axis(ax)
        log_ticks(ax)
