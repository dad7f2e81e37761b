"""Table 2's quantities from latent-workload records: final values per model and n, the training data's
scale, latent-ODE/baseline ratios per seed, and how one run's protocol differs from another's.

Shared by the claims (:mod:`nodebench.claims.registry`) and the latent report, so each is computed in
one place. :mod:`nodebench.schema.latent` says what the records mean.

Scale-free figures: every RMSE may be divided by ``train_std``, the pooled coordinate standard deviation
of the training spirals' noisy observation windows (validation spirals excluded), recorded per seed in
the run's ``data`` unit. Runs made before it was recorded take it from a run on the same data
configuration and seed that did record it (the generator is seeded, so the value is the same; runs with
``models=()`` exist for exactly this); :func:`train_scales` says which. The latent-ODE to baseline ratio
is taken per seed (same data set) and then averaged.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from nodebench.schema.latent import PAPER_TABLE2 as PAPER
from nodebench.schema.latent import VARIANT_PATTERN

PAPER_COUNTS = tuple(PAPER["latent_ode"])  # the observation counts of Table 2
PAPER_RATIO = {n: PAPER["latent_ode"][n] / PAPER["rnn"][n] for n in PAPER_COUNTS}
BASELINES = ("rnn_tanh", "rnn_tanh_nodt", "gru")  # Table 2 order: the paper's RNN first, ours last
MODEL_ORDER = (*BASELINES, "latent_ode")
LABELS = {
    "rnn_tanh": "RNN (tanh, Δt input)",
    "rnn_tanh_nodt": "RNN (tanh, no Δt)",
    "gru": "GRU (Δt input; ours, not the paper's)",
    "latent_ode": "Latent ODE",
}
SHORT = {"rnn_tanh": "tanh RNN", "rnn_tanh_nodt": "tanh RNN, no Δt", "gru": "GRU", "latent_ode": "latent ODE"}
#: Config fields that are bookkeeping, not protocol (which seeds, which n, what is recorded).
BOOKKEEPING = ("seeds", "obs_counts", "trajectory_spirals", "eval_every", "threads")
#: Config fields that fix a seed's data set (train_std depends on nothing else), with the values of runs
#: made before the field existed.
DATA_FIELDS = {
    "n_spirals": None,
    "noise_std": None,
    "amplitude": None,
    "geometry": "torchdiffeq",
    "n_grid": None,
    "start_min": None,
    "start_max": None,
    "val_spirals": None,
}
#: Protocol fields added after some runs were made, with the value those runs had in effect.
ABSENT_MEANS = {"geometry": "torchdiffeq", "patience": 0, "min_improvement": 0.0, "min_iterations": 0}


def config(meta: dict[str, Any]) -> dict[str, Any]:
    """A run's config (empty where its meta has none)."""
    return meta.get("config") or {}


def canonical_model(model: str, cfg: dict[str, Any]) -> str:
    """Model name in today's terms: earlier runs' ``rnn`` baseline is named by the cell it had."""
    if model != "rnn":
        return model
    return "gru" if cfg.get("cell", "gru") == "gru" else "rnn_tanh"


def tagged(df: pd.DataFrame, metas: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Model records with ``model`` and ``n`` columns parsed from variants ``"<model>/n=<n>"``."""
    parts = df["variant"].str.extract(VARIANT_PATTERN)
    configs = {meta["run_id"]: config(meta) for meta in metas or []}
    models = [
        canonical_model(model, configs.get(run, {})) if isinstance(model, str) else model
        for model, run in zip(parts["model"], df["run_id"])
    ]
    out = df.assign(model=models, n=pd.to_numeric(parts["n"]))
    return out[out["model"].isin(list(LABELS))].astype({"n": "int64"})


def finals(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (run, model, n, seed) of :func:`tagged` records, the final (``step = -1``) value of ``metric``."""
    rows = df[(df["metric"] == metric) & (df["step"] == -1)]
    return rows[["run_id", "model", "n", "seed", "value"]]


def _data_key(cfg: dict[str, Any], seed: int) -> str:
    return json.dumps([cfg.get(field, default) for field, default in DATA_FIELDS.items()] + [seed])


def train_scales(df: pd.DataFrame, metas: list[dict[str, Any]]) -> pd.DataFrame:
    """``train_std`` per (run, seed): recorded by the run, or by another run on the same data set.

    Arguments:
        df: latent records (those of runs that recorded ``train_std`` included).
        metas: the runs to give a scale, and the runs that may lend theirs.

    Returns:
        Columns ``run_id, seed, train_std, scale_from`` (the run that recorded it); ``train_std`` is
        NaN where no run on that data configuration and seed recorded it.
    """
    rows = df[(df["variant"] == "data") & (df["metric"] == "train_std") & (df["step"] == -1)]
    configs = {meta["run_id"]: config(meta) for meta in metas}
    recorded = {
        (run, int(seed)): value for run, seed, value in zip(rows["run_id"], rows["seed"], rows["value"])
    }
    by_data: dict[str, tuple[float, str]] = {}
    for (run, seed), value in recorded.items():
        if run in configs:
            by_data.setdefault(_data_key(configs[run], seed), (value, run))
    out = []
    for meta in metas:
        for seed in meta.get("seeds") or config(meta).get("seeds") or []:
            run = meta["run_id"]
            if (run, seed) in recorded:
                value, source = recorded[(run, seed)], run
            else:
                value, source = by_data.get(_data_key(config(meta), seed), (math.nan, ""))
            out.append({"run_id": run, "seed": int(seed), "train_std": value, "scale_from": source})
    return pd.DataFrame(out, columns=["run_id", "seed", "train_std", "scale_from"])


def normalised(values: pd.DataFrame, scales: pd.DataFrame) -> pd.DataFrame:
    """``values`` (``run_id, seed, value``, ...) with ``value`` divided by its run's and seed's
    ``train_std``; NaN where the scale is unknown."""
    merged = values.merge(scales[["run_id", "seed", "train_std"]], on=["run_id", "seed"], how="left")
    return merged.assign(value=merged["value"] / merged["train_std"]).drop(columns="train_std")


def ratios(values: pd.DataFrame, baseline: str, numerator: str = "latent_ode") -> pd.DataFrame:
    """Per (run, n, seed) the ratio of ``numerator``'s value to ``baseline``'s (the same data set).

    Arguments:
        values: columns ``run_id, model, n, seed, value`` (:func:`finals`).

    Returns:
        Columns ``run_id, n, seed, value`` (the ratio), only where both models have a value.
    """
    keys = ["run_id", "n", "seed"]
    top = values[values["model"] == numerator][[*keys, "value"]]
    bottom = values[values["model"] == baseline][[*keys, "value"]]
    both = top.merge(bottom, on=keys, suffixes=("_num", "_den"))
    return both.assign(value=both["value_num"] / both["value_den"])[[*keys, "value"]]


def changed(cfg: dict[str, Any], reference: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The protocol fields where ``cfg`` differs from ``reference``, as ``key=value`` texts."""
    keys = [*cfg, *(key for key in reference if key not in cfg)]
    return [
        f"{key}={cfg.get(key, ABSENT_MEANS.get(key))}"
        for key in keys
        if key not in BOOKKEEPING
        and key not in ignore
        and cfg.get(key, ABSENT_MEANS.get(key)) != reference.get(key, ABSENT_MEANS.get(key))
    ]


def differences(cfg: dict[str, Any], reference: dict[str, Any], ignore: tuple[str, ...] = ()) -> str:
    """The protocol fields where ``cfg`` differs from ``reference``, as ``key=value`` text."""
    return ", ".join(changed(cfg, reference, ignore)) or "(none)"


def by_config(metas: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs grouped by config apart from the seeds (e.g. one run per seed), in order of first start."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for meta in sorted(metas, key=lambda m: m.get("started_at") or ""):
        cfg = {k: v for k, v in config(meta).items() if k not in ("seeds", "threads")}
        groups.setdefault(json.dumps(cfg, sort_keys=True), []).append(meta)
    return list(groups.values())


def study_reference(
    groups: list[list[dict[str, Any]]], cells: list[list[dict[str, Any]]]
) -> list[dict[str, Any]] | None:
    """The main-preset run group the sensitivity cells vary: the one from which they differ in the
    fewest protocol fields (models aside), the latest of equals. A cell changes one choice of the
    card it was made from, which need not be the latest card."""
    if not groups or not cells:
        return None

    def cost(group: list[dict[str, Any]]) -> int:
        return sum(len(changed(config(cell[0]), config(group[0]), ("models",))) for cell in cells)

    return min(reversed(groups), key=cost)
