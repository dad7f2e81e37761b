"""The ``mnist`` workload on a small fake MNIST (never the real data): records, one SGD step per model,
kill and resume, preflight and the report section. Offline."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

from nodebench import cli, store
from nodebench.models.mnist import PARAMETER_COUNTS
from nodebench.report import build_report
from nodebench.workloads import mnist

EPOCH_METRICS = {
    "train_loss",
    "test_error",
    "lr",
    "epoch_time",
    "eval_time",
    "test_time_per_image",
    "peak_rss",
}
NFE_METRICS = {"nfe_forward", "nfe_backward"}


def fake_load_mnist(
    root: str | None = None, split: str = "train", dataset: str = "mnist"
) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable stand-in for :func:`nodebench.data.mnist.load_mnist`: noise plus a bar per class."""
    n = 128 if split == "train" else 64
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 60, (n, 28, 28), generator=generator, dtype=torch.uint8)
    for k in range(10):
        images[labels == k, 2 * k + 4 : 2 * k + 7, 6:22] = 255
    return images, labels


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread, as the workload uses: two are several times slower on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAKE_CHECKSUMS = {"source": "test", "sha256": {"train-images-idx3-ubyte": "ab" * 32}}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One smoke-preset run through the CLI on fake data (shared by the tests that only read it)."""
    out = tmp_path_factory.mktemp("runs")
    data = tmp_path_factory.mktemp("data")
    (data / "mnist").mkdir()
    (data / "mnist" / "checksums.json").write_text(json.dumps(FAKE_CHECKSUMS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEBENCH_DATA", str(data))
        patch.setattr(mnist, "load_mnist", fake_load_mnist)
        patch.setattr(mnist, "preflight", lambda config, device: None)  # fake data: nothing to verify
        assert cli.main(["run", "mnist", "--preset", "smoke", "--out", str(out)]) == 0
    (run_dir,) = (out / "mnist").iterdir()
    yield run_dir


def test_the_data_checksums_go_into_meta(
    smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = store.read_meta(smoke_run)
    assert meta["data"]["sha256"] == FAKE_CHECKSUMS["sha256"] and meta["data"]["source"] == "test"
    assert meta["attempts"][0]["data"] == meta["data"]
    monkeypatch.setenv("NODEBENCH_DATA", str(tmp_path))
    assert "unreadable" in mnist.data_provenance(mnist.PRESETS["smoke"])["error"]


def test_smoke_run_records_the_expected_metrics(smoke_run: Path) -> None:
    meta = store.read_meta(smoke_run)
    assert (meta["status"], meta["preset"], meta["workload"]) == ("complete", "smoke", "mnist")
    records = store.read_records(smoke_run)
    assert list(dict.fromkeys(records["variant"])) == list(mnist.MODEL_NAMES)
    for model in mnist.MODEL_NAMES:
        rows = records[records["variant"] == model]
        epoch_rows = rows[rows["step"] == 0]
        expected = EPOCH_METRICS | (NFE_METRICS if model in ("rknet", "odenet") else set())
        assert set(epoch_rows["metric"]) == expected, model
        final = rows[rows["step"] == store.NO_STEP].set_index("metric")["value"]
        assert final["params"] == PARAMETER_COUNTS[model]
        assert final["final_test_error"] == epoch_rows.set_index("metric").loc["test_error", "value"]
        assert (smoke_run / "checkpoints" / f"{model}-seed0-epochs001.pt").is_file()
    nfe = records[records["metric"].isin(NFE_METRICS)].set_index(["variant", "metric"])["value"]
    assert nfe["rknet", "nfe_forward"] == 24 and nfe["rknet", "nfe_backward"] == 0  # 6 RK4 steps, no adjoint
    assert nfe["odenet", "nfe_forward"] >= 8 and nfe["odenet", "nfe_backward"] >= 8  # dopri5 both ways


def test_report_renders_table_1_and_figure_3(smoke_run: Path, tmp_path: Path) -> None:
    assert cli.main(["report", str(smoke_run), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "#### Table 1: run" in text and "The mnist section failed" not in text
    odenet_row = next(line for line in text.splitlines() if line.startswith("| ODE-Net |"))
    assert (
        "| ODE-Net | 1 | 1 |" in odenet_row
        and "| 0.42 |" in odenet_row
        and "| 208,266 | 0.22M |" in odenet_row
    )
    assert "| 0 (backprop) |" in next(line for line in text.splitlines() if line.startswith("| RK-Net |"))
    for figure in ("mnist-curves.png", "mnist-nfe.png"):
        assert f"(figures/{figure})" in text
        assert (tmp_path / "figures" / figure).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", mnist.MODEL_NAMES)
def test_one_training_step_reduces_the_loss(name: str) -> None:
    config = mnist.Config()
    model = mnist.make_model(name, config, torch.device("cpu"))
    optimizer, _ = mnist.make_optimizer(model, config)
    images, labels = fake_load_mnist()
    x, y = mnist.to_input(images[:32]), labels[:32]
    before = mnist.train_step(model, optimizer, x, y)
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(model(x), y).item()
    assert after < before


def test_random_crop_cuts_a_window_of_the_padded_image() -> None:
    images = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)
    crops = mnist.random_crop(images, 4, mnist.epoch_generator(0, 0))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for image, crop in zip(padded, crops):
        windows = [image[i : i + 28, j : j + 28] for i in range(9) for j in range(9)]
        assert any(torch.equal(crop, window) for window in windows)
    again = mnist.random_crop(images, 4, mnist.epoch_generator(0, 0))
    assert torch.equal(crops, again) and mnist.random_crop(images, 0, mnist.epoch_generator(0, 0)) is images


def without_timings(run_dir: Path) -> pd.DataFrame:
    records = store.read_records(run_dir)
    return records[~records["unit"].isin(["s", "MiB"])].drop(columns="run_id").reset_index(drop=True)


def test_kill_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = dataclasses.replace(
        mnist.PRESETS["smoke"],
        models=("mlp", "odenet"),
        epochs=2,
        milestones=(1,),
        batch_size=32,
        train_size=64,
        test_size=32,
    )
    monkeypatch.setitem(mnist.PRESETS, "smoke", tiny)
    monkeypatch.setattr(mnist, "load_mnist", fake_load_mnist)
    monkeypatch.setattr(mnist, "preflight", lambda config, device: None)  # fake data: nothing to verify
    assert cli.main(["run", "mnist", "--out", str(tmp_path / "reference")]) == 0
    (reference,) = (tmp_path / "reference" / "mnist").iterdir()

    train_epoch = mnist._train_epoch

    def killed_in_odenet_epoch_1(trainer: mnist._Trainer, name: str, *args: object) -> None:
        epoch = trainer.epochs_done
        train_epoch(trainer, name, *args)  # records written, then killed before the unit completes
        if (name, epoch) == ("odenet", 1):
            raise KeyboardInterrupt

    monkeypatch.setattr(mnist, "_train_epoch", killed_in_odenet_epoch_1)
    assert cli.main(["run", "mnist", "--out", str(tmp_path / "runs")]) == cli.EXIT_INTERRUPTED
    (run_dir,) = (tmp_path / "runs" / "mnist").iterdir()
    assert store.read_meta(run_dir)["status"] == "interrupted"
    assert f"nodebench run mnist --resume {run_dir}" in capsys.readouterr().err

    monkeypatch.setattr(mnist, "_train_epoch", train_epoch)
    assert cli.main(["run", "mnist", "--resume", str(run_dir)]) == 0
    assert store.read_meta(run_dir)["status"] == "complete"
    pd.testing.assert_frame_equal(without_timings(run_dir), without_timings(reference))
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "mlp-seed0-epochs002.pt",
        "odenet-seed0-epochs002.pt",
    ]
    resumed, uninterrupted = (
        torch.load(path / "checkpoints" / "odenet-seed0-epochs002.pt", weights_only=True)
        for path in (run_dir, reference)
    )
    for key, value in uninterrupted["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert resumed["scheduler"] == uninterrupted["scheduler"]


def test_preflight_names_the_fetch_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODEBENCH_DATA", str(tmp_path))
    reason = mnist.preflight(mnist.PRESETS["smoke"], torch.device("cpu"))
    assert reason is not None and "`nodebench data mnist`" in reason
    with pytest.raises(FileNotFoundError, match="nodebench data mnist"):
        mnist.load_data(mnist.PRESETS["smoke"], torch.device("cpu"))


def test_odenet_with_adams_records_the_nfe_of_single_iterations(tmp_path: Path) -> None:
    """The ``figure3`` option: ODE-Net with ``method=adams``, NFE of every iteration (both ways)."""
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    (data / "mnist" / "checksums.json").write_text(json.dumps(FAKE_CHECKSUMS))
    overrides = ["models=('odenet',)", "method=adams", "nfe_every=1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEBENCH_DATA", str(data))
        patch.setattr(mnist, "load_mnist", fake_load_mnist)
        patch.setattr(mnist, "preflight", lambda config, device: None)
        args = ["run", "mnist", "--preset", "smoke", "--out", str(tmp_path / "runs")]
        assert cli.main(args + [a for o in overrides for a in ("--set", o)]) == 0
    (run_dir,) = (tmp_path / "runs" / "mnist").iterdir()
    assert store.read_meta(run_dir)["config"]["method"] == "adams"
    records = store.read_records(run_dir)
    single = records[records["variant"] == "odenet/iterations"].pivot(index="step", columns="metric")["value"]
    assert list(single.index) == [0, 1]  # 128 fake images in batches of 64: two iterations, both recorded
    assert (single >= 2).all().all()  # adams counted both ways: forward and the adjoint's backward solve
    epoch = records[(records["variant"] == "odenet") & (records["step"] == 0)].set_index("metric")["value"]
    assert epoch["nfe_forward"] == single["nfe_forward"].mean()
    assert epoch["nfe_backward"] == single["nfe_backward"].mean()
    text = build_report([run_dir], tmp_path / "report").read_text()
    table1 = text[text.index("#### Table 1") : text.index("![")]
    assert "odenet/iterations" not in table1  # single iterations are not a model of Table 1
    assert "Figure 3c/3d per training iteration" in text
    protocol = "adams at rtol = atol = 0.001, adjoint with the seminorm, NFE of one iteration in every 1"
    assert f"{protocol}: forward" in text
    assert (tmp_path / "report" / "figures" / "mnist-nfe-iterations.png").is_file()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="method must be an adaptive method"):
        mnist.Config(method="rk4")
    with pytest.raises(ValueError, match="nfe_every"):
        mnist.Config(nfe_every=-1)
    with pytest.raises(ValueError, match="models must be"):
        mnist.Config(models=("vgg",))
    with pytest.raises(ValueError, match="milestones"):
        mnist.Config(milestones=(100, 60))


@pytest.mark.parametrize(
    ("epochs", "milestones"),
    [
        (160, (60, 100, 140)),
        (32, (12, 20, 28)),
        (16, (6, 10, 14)),
        (8, (3, 5, 7)),
        (12, (5, 8, 11)),
        (5, (2, 3, 4)),
    ],
)
def test_budget_schedule_decays_at_the_papers_fractions(epochs: int, milestones: tuple[int, ...]) -> None:
    assert mnist.budget_milestones(epochs) == milestones
    # each decay within half an epoch of its fraction of the paper's 160 epochs
    for paper, ours in zip(mnist.PAPER_MILESTONES, milestones, strict=True):
        assert abs(ours - paper * epochs / mnist.PAPER_EPOCHS) <= 0.5


def test_budget_schedule_refuses_a_budget_too_short_for_three_decays() -> None:
    with pytest.raises(ValueError, match="epochs must be an integer >= 5"):
        mnist.budget_milestones(4)


def test_budget_and_paper_mlp_presets_keep_the_papers_protocol() -> None:
    paper = mnist.PRESETS["paper"]
    budget = mnist.PRESETS["budget"]
    assert mnist.PRESETS["paper-mlp"] == dataclasses.replace(paper, models=("mlp",))
    assert budget == dataclasses.replace(
        paper, models=("resnet", "rknet", "odenet"), epochs=32, milestones=(12, 20, 28)
    )
