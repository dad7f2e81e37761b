"""Every report figure function, drawn from hand-made records: no text overlaps another or a legend or
leaves the canvas, every axis is labelled (:mod:`nodebench.report.figcheck`); and the style rules the
figures share (colour = method, marker and line style = library, categorical legends, NFE from 0,
equal aspect for phase plots, positive log-axis bands, captions that name the seeds drawn)."""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.legend import Legend

import nodebench.report as report_package
from nodebench.claims import table2
from nodebench.report import (
    _build,
    figcheck,
    figure3,
    latent,
    memory,
    mnist,
    nfe,
    solvers,
    spiral,
    style,
    tolerance,
)
from nodebench.schema.latent import OBS_POINTS, TRAJ_STRIDE

RUN = "20260101T000000Z-abcdef"
TOLS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]


def rows(records: list[tuple], run: str = RUN, unit: str = "") -> pd.DataFrame:
    """Tidy records from ``(variant, seed, step, metric, value)`` tuples."""
    frame = pd.DataFrame(records, columns=["variant", "seed", "step", "metric", "value"])
    return frame.assign(run_id=run, workload="test", unit=unit)


# --- hand-made records per figure -------------------------------------------------------------------


def sweep_records(variants: list[str], tols: list[float] = TOLS, task: str = "task_mse") -> pd.DataFrame:
    out = []
    for k, variant in enumerate(variants):
        for step, tol in enumerate(tols):
            nfe_count = 20 * (step + 1) ** 1.6 * (1 + 0.2 * k)
            for metric, value in (
                ("tol", tol),
                ("nfe_forward", nfe_count),
                ("error_rms", tol * 3.0),
                ("error_max", tol * 9.0),
                (task, 0.8 + 0.01 * step),
                ("time_forward", 1e-3 * nfe_count * (1 + k)),
            ):
                out.append((variant, 0, step, metric, value))
    return rows(out)


def training_nfe(epochs: int = 12, seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"x": epoch, "seed": seed, "nfe_forward": 20 + epoch + seed, "nfe_backward": 12 + epoch / 2}
            for epoch in range(1, epochs + 1)
            for seed in seeds
        ]
    )


def draw_figure3_mnist(tmp: Path) -> Figure:
    sweep = figure3.sweep_table(
        sweep_records(["mnist_odenet/nodebench/dopri5"], TOLS[:5], "test_error"),
        "mnist_odenet/nodebench/dopri5",
        "test_error",
    )
    training = training_nfe().assign(series="ODE-Net")
    return figure3.draw(
        sweep,
        training,
        tmp / "f3.png",
        title="Figure 3 on the trained MNIST ODE-Net (nodebench dopri5, adjoint with seminorm)",
        task_label="test error % (subset)",
        training_label="epoch",
        hue_label="epoch",
        colour_by_x=True,
    )


def draw_figure3_spiral(tmp: Path) -> Figure:
    sweep = figure3.sweep_table(sweep_records(["nodebench/dopri5"]), "nodebench/dopri5", "task_mse")
    training = pd.concat(
        [
            training_nfe(6).assign(series=f"tol=1e-0{k}", nfe_forward=lambda d, k=k: d["nfe_forward"] * k)
            for k in (3, 5, 7)
        ]
    )
    return figure3.draw(
        sweep,
        training,
        tmp / "f3s.png",
        title="Figure 3 on torchdiffeq's spiral-demo model (nodebench dopri5)",
        task_label="task MSE vs data",
        training_label="training iteration",
        hue_label="adjoint rtol = atol",
    )


def draw_figure3_methods(tmp: Path) -> Figure:
    records = sweep_records(["mnist_odenet/nodebench/dopri5", "mnist_odenet/nodebench/adams"], TOLS[:5])
    sweeps = {
        m: figure3.sweep_table(records, f"mnist_odenet/nodebench/{m}", "test_error")
        for m in ("dopri5", "adams")
    }
    training = {
        "dopri5": pd.DataFrame({"x": range(0, 400, 4), "nfe_forward": 20.0, "nfe_backward": 20.0}),
        "adams": pd.DataFrame(
            {"x": range(0, 400, 4), "nfe_forward": 17.0 + np.arange(100) % 9, "nfe_backward": 19.0}
        ),
    }
    return figure3.draw_methods(
        sweeps, training, tmp / "m.png", title="Figure 3 on MNIST: nodebench adams beside dopri5"
    )


def draw_tolerance(tmp: Path) -> Figure:
    table = tolerance.sweep(sweep_records(["nodebench/dopri5", "torchdiffeq/dopri5"]))
    return tolerance.draw(table, tolerance.time_fits(table), 1e-12)


def solver_table() -> pd.DataFrame:
    out = []
    solvers_run = [("nodebench", m) for m in ("dopri5", "adams", "tsit5", "bosh3")]
    solvers_run += [("torchdiffeq", m) for m in ("dopri5", "bosh3", "dopri8", "fehlberg2", "adaptive_heun")]
    solvers_run += [("scipy", "lsoda"), ("scipy", "vode"), ("torchode", "tsit5")]
    for k, (library, method) in enumerate(solvers_run):
        for step, rtol in enumerate([1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]):
            nfe_count = 90 * 1.5**step * (1 + k / 4)
            for metric, value in (
                ("rtol", rtol),
                ("atol", rtol * 1e-3),
                ("nfe", nfe_count),
                ("error", rtol * (1 + k)),
                ("time", nfe_count * 3e-5 * (1 + k / 3)),
            ):
                out.append((f"vdp/{library}/{method}", 0, step, metric, value))
    return solvers.points(rows(out))


def nfe_table() -> pd.DataFrame:
    out = []
    variants = [
        f"{lib}/{norm}/tol={tol}"
        for lib in ("nodebench", "torchdiffeq")
        for norm in ("seminorm", "full")
        for tol in ("1e-03", "1e-05", "1e-07")
    ]
    variants += [
        f"nodebench/adams/{norm}/tol={tol}" for norm in ("seminorm", "full") for tol in ("1e-03", "1e-07")
    ]
    variants += [f"mnist_block/nodebench/{norm}/tol=1e-03" for norm in ("seminorm", "full")]
    for k, variant in enumerate(variants):
        for step in range(0, 600, 100):
            fwd = 30 + 2 * k + step / 10
            bwd = fwd * (0.9 if "seminorm" in variant else 1.2)
            for metric, value in (("nfe_forward", fwd), ("nfe_backward", bwd), ("nfe_ratio", bwd / fwd)):
                out.append((variant, 0, step, metric, value))
    return nfe.split_variants(rows(out))


def memory_records() -> pd.DataFrame:
    out = []
    modes = ["nodebench-direct", "nodebench-adjoint", "torchdiffeq-direct", "torchdiffeq-adjoint", "resnet"]
    for k, mode in enumerate(modes):
        for L in (5, 10, 20, 40, 80, 160):
            grows = "direct" in mode or mode == "resnet"
            for metric, value in (
                ("saved_bytes", (L if grows else 1) * 2**20 * (1 + k)),
                ("rss_growth", (L if grows else 3) * 2**21),
                ("time_fwd_bwd", 0.05 * L * (1 + k / 5)),
            ):
                out.append((mode, 0, L, metric, value))
    return rows(out)


def mnist_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curves (``model, method, run, seed, epoch, metric, value``) and the NFE frame of ``draw_nfe``."""
    out = []
    lines = [
        ("mlp", "dopri5", "standard 87ceb0"),
        ("resnet", "dopri5", "standard 87ceb0"),
        ("rknet", "dopri5", "standard 87ceb0"),
        ("odenet", "dopri5", "standard 87ceb0"),
        ("odenet", "dopri5", "figure3 2a6d91"),
        ("odenet", "adams", "figure3-adams 026b68"),
    ]
    for model, method, run in lines:
        epochs = 1 if run.startswith("figure3") else 10
        for seed in (0, 1, 2):
            for epoch in range(1, epochs + 1):
                loss = 0.6 / epoch * (1 + 0.3 * seed)
                out += [
                    (model, method, run, seed, epoch, "train_loss", loss),
                    (model, method, run, seed, epoch, "test_error", 8 * loss),
                ]
                if model in ("rknet", "odenet"):
                    backward = 0.0 if model == "rknet" else 20.0 + seed
                    out += [
                        (model, method, run, seed, epoch, "nfe_forward", 20.0 + epoch / 2 + seed),
                        (model, method, run, seed, epoch, "nfe_backward", backward),
                    ]
    data = pd.DataFrame(out, columns=["model", "method", "run", "seed", "epoch", "metric", "value"])
    nfe_rows = data[data["metric"].isin(["nfe_forward", "nfe_backward"])]
    wide = nfe_rows.pivot_table(index=[*mnist.LINE_KEYS, "seed", "epoch"], columns="metric", values="value")
    return data[data["metric"].isin(["train_loss", "test_error"])], wide.reset_index()


def iteration_runs() -> list[tuple[str, str, pd.DataFrame]]:
    x = np.arange(0, 465, 2)
    return [
        ("dopri5 (2a6d91)", "dopri5", pd.DataFrame({"x": x, "nfe_forward": 20.0, "nfe_backward": 20.0})),
        ("adams (026b68)", "adams", pd.DataFrame({"x": x, "nfe_forward": 17 + x % 11, "nfe_backward": 19.0})),
    ]


SPIRAL_VARIANTS = [
    f"example2/{mode}/{solver}" for mode in ("direct", "adjoint") for solver in ("euler", "dopri5")
]


def spiral_run() -> pd.DataFrame:
    out = []
    t = np.linspace(0, 25, 120)
    for i, ti in enumerate(t):
        out += [
            ("example2", 0, i, "t", ti),
            ("example2", 0, i, "truth_x", 2 * np.exp(-ti / 10) * np.cos(ti)),
            ("example2", 0, i, "truth_y", 2 * np.exp(-ti / 10) * np.sin(ti)),
            ("example2", 0, i, "obs_x", 2 * np.exp(-ti / 10) * np.cos(ti) + 0.05),
            ("example2", 0, i, "obs_y", 2 * np.exp(-ti / 10) * np.sin(ti) - 0.05),
        ]
    for k, variant in enumerate(SPIRAL_VARIANTS):
        for updates in (0, 50, 250, 1000):
            for i, ti in enumerate(t):
                r = 2 * np.exp(-ti / (8 + k + updates / 200))
                out += [
                    (variant, 0, i, f"traj_x@{updates}", r * np.cos(ti)),
                    (variant, 0, i, f"traj_y@{updates}", r * np.sin(ti)),
                ]
        for seed in (0, 1, 2):
            for step in range(0, 1000, 50):
                spread = 10.0 ** (seed - 1)  # seeds a decade apart: mean - sd < 0 on the log axes
                out += [
                    (variant, seed, step, "loss", spread * 0.5 / (1 + step / 100)),
                    (variant, seed, step, "traj_mse", spread * 2 / (1 + step / 200)),
                    (variant, seed, step, "nfe_forward", 30.0 + 10 * k + seed),
                ]
    return rows(out)


def spiral_snapshots(kind: str) -> Figure:
    run = spiral_run()
    data = spiral._data(run, "example2", 0)
    predictions = {v: spiral._snapshots(run, v, 0) for v in SPIRAL_VARIANTS}
    return spiral.draw_snapshots(data, predictions, kind)


LATENT_MODELS = ("rnn_tanh", "rnn_tanh_nodt", "gru", "latent_ode")


def latent_records() -> pd.DataFrame:
    """One seed's Figure 8 trajectories (4 test spirals, n = 30 and 100) and every model's finals for
    three seeds and n = 30, 50, 100, with validation curves."""
    out = []
    points = np.arange(2 * OBS_POINTS)
    for slot in range(4):
        sign = 1 if slot % 2 == 0 else -1
        angle = sign * points / 40
        radius = 5 - points / 60
        out.append(("data", 0, slot, "traj_orient", float(sign)))
        for i in points:
            step = slot * TRAJ_STRIDE + int(i)
            out += [
                ("data", 0, step, "truth_x", radius[i] * np.cos(angle[i]) + 3 * slot),
                ("data", 0, step, "truth_y", radius[i] * np.sin(angle[i])),
            ]
            for k, model in enumerate(LATENT_MODELS):
                for n in (30, 100):
                    wobble = 0.1 * k * np.sin(i / 7)
                    out += [
                        (
                            f"{model}/n={n}",
                            0,
                            step,
                            "pred_x",
                            radius[i] * np.cos(angle[i]) + 3 * slot + wobble,
                        ),
                        (f"{model}/n={n}", 0, step, "pred_y", radius[i] * np.sin(angle[i]) - wobble),
                    ]
        for n in (30, 100):
            for i in np.linspace(0, OBS_POINTS - 1, n).astype(int):
                step = slot * TRAJ_STRIDE + int(i)
                out += [
                    (f"data/n={n}", 0, step, "obs_x", radius[i] * np.cos(angle[i]) + 3 * slot + 0.05),
                    (f"data/n={n}", 0, step, "obs_y", radius[i] * np.sin(angle[i]) - 0.05),
                ]
    for k, model in enumerate(LATENT_MODELS):
        for n in (30, 50, 100):
            for seed in (0, 1, 2):
                value = (0.5 if model == "latent_ode" else 2.0 + k) * (1 + 0.1 * seed) * 30 / n
                out += [(f"{model}/n={n}", seed, -1, "rmse_extrap_truth", value)]
                for step in range(100, 3000, 100):
                    out.append(
                        (
                            f"{model}/n={n}",
                            seed,
                            step,
                            "val_rmse_extrap",
                            value * (1 + 3000 / step) * 10 ** (seed - 1),
                        )
                    )
    return rows(out)


def draw_latent_figure8(tmp: Path) -> Figure:
    records = latent_records()
    return latent.draw_figure8(
        records, table2.tagged(records), 30, OBS_POINTS, f"Run {RUN}, seed 0, n = 30: test spirals"
    )


def draw_latent_table2(tmp: Path) -> Figure:
    tagged = table2.tagged(latent_records())
    return latent.draw_table2(table2.finals(tagged, "rmse_extrap_truth"))


def draw_curves_generic(tmp: Path) -> Figure:
    out = [
        (variant, seed, step, metric, value * (1 + seed) / (step + 1))
        for variant in ("nodebench/dopri5", "torchdiffeq/dopri5", "ode", "resnet")
        for seed in (0, 1)
        for step in range(5)
        for metric, value in (("loss", 1.0), ("accuracy", 90.0), ("nfe_forward", 30.0))
    ]
    return _build._curves_figure(rows(out, unit="%"), ["loss", "accuracy", "nfe_forward"])


#: (case, registry name, builder): every registered figure function at least once.
CASES: list[tuple[str, str, Callable[[Path], Figure]]] = [
    ("generic curves", "_build._curves_figure", draw_curves_generic),
    ("figure 3, MNIST", "figure3.draw", draw_figure3_mnist),
    ("figure 3, spiral", "figure3.draw", draw_figure3_spiral),
    ("figure 3, methods", "figure3.draw_methods", draw_figure3_methods),
    ("tolerance", "tolerance.draw", draw_tolerance),
    ("solvers", "solvers.draw", lambda tmp: solvers.draw(solver_table(), "vdp")),
    ("nfe", "nfe.draw", lambda tmp: nfe.draw(nfe_table())),
    ("memory", "memory.draw", lambda tmp: memory.draw(memory_records())),
    ("mnist curves", "mnist.draw_curves", lambda tmp: mnist.draw_curves(mnist_frames()[0])),
    ("mnist nfe", "mnist.draw_nfe", lambda tmp: mnist.draw_nfe(mnist_frames()[1])),
    ("mnist iterations", "mnist.draw_iterations", lambda tmp: mnist.draw_iterations(iteration_runs())),
    ("spiral phase", "spiral.draw_snapshots", lambda tmp: spiral_snapshots("phase")),
    ("spiral x(t)", "spiral.draw_snapshots", lambda tmp: spiral_snapshots("xt")),
    ("spiral curves", "spiral.draw_curves", lambda tmp: spiral.draw_curves(spiral_run())),
    ("latent figure 8", "latent.draw_figure8", draw_latent_figure8),
    (
        "latent figure 8 panel",
        "latent.draw_figure8_panel",
        lambda tmp: latent.draw_figure8_panel(latent_records(), 30),
    ),
    ("latent table 2", "latent.draw_table2", draw_latent_table2),
    (
        "latent validation curves",
        "latent.draw_val_curves",
        lambda tmp: latent.draw_val_curves(table2.tagged(latent_records())),
    ),
]


def test_every_figure_function_is_drawn_here():
    for module in pkgutil.iter_modules(report_package.__path__):
        importlib.import_module(f"nodebench.report.{module.name}")
    assert set(style.FIGURES) == {name for _, name, _ in CASES}


@pytest.mark.parametrize("case, name, build", CASES, ids=[c[0] for c in CASES])
def test_figure_layout_is_clean(case, name, build, tmp_path):
    fig = build(tmp_path)
    assert isinstance(fig, Figure)
    assert figcheck.layout_problems(fig) == []


# --- the checker itself ------------------------------------------------------------------------------


def test_the_figure_test_fails_on_a_planted_overlapping_title(tmp_path):
    fig = draw_figure3_mnist(tmp_path)
    assert figcheck.layout_problems(fig) == []
    panel_b = fig.axes[1]
    panel_b.set_title("(b) NFE against wall time of one forward solve, median of the repeats, per tolerance")
    problems = figcheck.layout_problems(fig)
    assert any("(b) NFE against wall time of one forward solve" in p and "overlaps" in p for p in problems)


def test_the_checker_flags_clipped_text_legends_over_text_and_unlabelled_axes():
    fig = Figure(figsize=(6, 3), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.plot([1, 2], [1, 2], label="a line")
        ax.set(xlabel="x", ylabel="y")
    assert figcheck.layout_problems(fig) == []
    fig.text(0.98, 0.5, "a note that runs past the right edge")
    right.set_xlabel("")
    problems = figcheck.layout_problems(fig)
    assert any("a note that runs past the right edge" in p and "leaves the canvas" in p for p in problems)
    assert any("has no x label" in p for p in problems)
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 2], label="a line")
    ax.set(xlabel="x", ylabel="y", title="a title")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.12))  # over the title
    assert any("covers" in p and "a title" in p for p in figcheck.layout_problems(fig))


def test_the_checker_flags_overlapping_tick_labels():
    fig = Figure(figsize=(3, 2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(range(10), range(10))
    ax.set_xticks(range(10), [f"label {i}" for i in range(10)])
    ax.set(xlabel="x", ylabel="y")
    assert any("'label 0' overlaps" in p for p in figcheck.layout_problems(fig))


# --- the reviewer's defects ---------------------------------------------------------------------------


def test_tolerance_y_label_names_the_run_reference():
    from nodebench.workloads.tolerance import REFERENCE_TOL

    assert tolerance.SPIRAL_REFERENCE_TOL == REFERENCE_TOL
    meta = {"config": {"mnist_reference_tol": 1e-7}}
    assert tolerance.reference_tol(meta, ["mnist_odenet/nodebench/dopri5"]) == 1e-7
    assert tolerance.reference_tol(meta, ["nodebench/dopri5"]) == REFERENCE_TOL
    table = tolerance.sweep(sweep_records(["mnist_odenet/nodebench/dopri5"], TOLS[:5]))
    fig = tolerance.draw(table, tolerance.time_fits(table), 1e-7)
    assert fig.axes[0].get_ylabel() == "numerical error (RMS vs 1e-7 reference)"


def legend_texts(fig: Figure) -> list[list[str]]:
    return [[t.get_text() for t in legend.get_texts()] for legend in fig.findobj(Legend)]


def test_legends_list_only_the_values_run(tmp_path):
    table = tolerance.sweep(sweep_records(["nodebench/dopri5", "torchdiffeq/dopri5"], [1e-1, 1e-4, 1e-8]))
    texts = legend_texts(tolerance.draw(table, tolerance.time_fits(table), 1e-12))
    assert ["1e-1", "1e-4", "1e-8"] in texts  # the tolerances run, never a binned -7.5
    assert ["nodebench dopri5", "torchdiffeq dopri5"] in texts
    fig = mnist.draw_nfe(mnist_frames()[1])
    assert [f"{e}" for e in range(1, 11)] in legend_texts(fig)  # every epoch run, none between
    fig = draw_figure3_mnist(tmp_path)
    assert fig.axes[0].get_legend() is not None
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:-1] == [
        "1e-1",
        "1e-2",
        "1e-3",
        "1e-4",
        "1e-5",
    ]


def test_colour_is_the_method_and_style_the_library():
    fig = solvers.draw(solver_table(), "vdp")
    lines = {line.get_label(): line for line in fig.legends[0].get_lines()}
    ours, theirs = lines["nodebench dopri5"], lines["torchdiffeq dopri5"]
    assert ours.get_color() == theirs.get_color() == style.colour("dopri5")
    assert ours.get_linestyle() != theirs.get_linestyle() and ours.get_marker() != theirs.get_marker()
    assert lines["nodebench adams"].get_color() != ours.get_color()
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    assert colours.count(style.colour("dopri5")) == 2  # the same colour for the same method, nothing else
    # the same mapping in another figure: the tolerance sweep
    table = tolerance.sweep(sweep_records(["nodebench/dopri5", "torchdiffeq/dopri5"]))
    sweep_lines = tolerance.draw(table, tolerance.time_fits(table), 1e-12).axes[0].get_lines()
    assert {line.get_color() for line in sweep_lines} == {style.colour("dopri5")}
    assert [line.get_linestyle() for line in sweep_lines] == ["-", "--"]
    assert style.split_solver("mnist_odenet/nodebench/adams") == ("nodebench", "adams")


def test_nfe_axes_start_at_zero(tmp_path):
    assert draw_figure3_mnist(tmp_path).axes[3].get_ylim()[0] == 0
    assert mnist.draw_nfe(mnist_frames()[1]).axes[0].get_ylim()[0] == 0
    assert mnist.draw_iterations(iteration_runs()).axes[0].get_ylim()[0] == 0


def test_phase_plots_have_equal_aspect():
    for fig in (
        spiral_snapshots("phase"),
        draw_latent_figure8(Path()),
        latent.draw_figure8_panel(latent_records(), 30),
    ):
        assert all(ax.get_aspect() == 1.0 for ax in fig.axes)


def test_log_axis_bands_stay_positive_and_near_the_data():
    fig = spiral.draw_curves(spiral_run())
    loss = fig.axes[0]  # seeds a decade apart: mean - sd would be negative
    assert loss.get_yscale() == "log"
    low, high = loss.get_ylim()
    values = spiral_run().query("metric == 'loss'")["value"]
    assert values.min() / 10 < low < values.min() and high < values.max() * 10
    centre, below, above = style.spread([0.01, 0.1, 1.0], log=True)
    assert below > 0 and math.isclose(centre, 0.1) and math.isclose(below * above, centre**2)
    assert style.spread([0.01, 0.1, 1.0])[1] < 0  # the arithmetic band would cross zero


def test_table2_figure_marks_seeds_and_the_paper():
    fig = draw_latent_table2(Path())
    texts = legend_texts(fig)
    assert ["paper: latent ODE / RNN"] == [t for t in sum(texts, []) if t.startswith("paper: latent ODE /")]
    assert {"paper: RNN", "paper: Latent ODE"} <= set(sum(texts, []))
    seeds_drawn = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert seeds_drawn == 4 * 3 * 3  # models x n x seeds, one point each
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["30", "50", "100"]


def test_figure3_methods_has_all_four_panels(tmp_path):
    fig = draw_figure3_methods(tmp_path)
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)", "(d)"]
    assert fig.axes[1].get_xlabel() == "NFE forward" and "wall time" in fig.axes[1].get_ylabel()


def test_generic_caption_names_a_seed_only_when_the_runs_have_one():
    metas = [{"run_id": RUN, "preset": "standard", "seeds": [0, 1, 2]}]
    text = _build._captioned("![a figure](figures/x.png)", metas)
    assert "seeds 0, 1, 2" not in text and "does not say which" in text
    one = _build._captioned("![a figure](figures/x.png)", [{**metas[0], "seeds": [2]}])
    assert one.endswith("*a figure. Preset standard; one seed (2).*")


def test_latent_section_captions_the_seed_its_figure_8_draws(tmp_path):
    records = latent_records().assign(run_id=RUN, workload="latent")
    config = {
        "seeds": [0, 1, 2],
        "obs_counts": [30, 50, 100],
        "models": list(LATENT_MODELS),
        "method": "adams",
    }
    meta = {"run_id": RUN, "preset": "standard", "seeds": [0, 1, 2], "status": "complete", "config": config}
    (tmp_path / "figures").mkdir()
    text = latent.section(records, [meta], tmp_path)
    panel = f"![Figure 8 at a glance, n=30, run {RUN}](figures/latent-{RUN}-fig8-panel.png)"
    assert panel in text and (tmp_path / "figures" / f"latent-{RUN}-fig8-panel.png").exists()
    assert f"![Table 2 as a figure, runs {RUN}](figures/latent-{RUN}-table2.png)" in text
    captions = [line for line in text.splitlines() if line.startswith("*Figure 8")]
    assert len(captions) == 3  # the panel, and the full figure at n = 30 and 100 (trajectories recorded)
    assert all("seed 0 alone" in line and "the runs' seeds: 0, 1, 2" in line for line in captions)
    figures = [line for line in text.splitlines() if line.startswith("![")]
    following = [text.splitlines()[text.splitlines().index(f) + 2] for f in figures]
    assert all(line.startswith("*") for line in following)  # every figure captioned by the section
