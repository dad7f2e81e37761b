"""Tolerance against cost and accuracy of a trained model (paper Fig. 3a and 3b). See :data:`PROTOCOL`."""

from __future__ import annotations

import copy
import functools
import io
from dataclasses import dataclass

import torch

from nodebench.measure import median_time
from nodebench.reference.torchdiffeq_adapter import LIBRARIES, CountingFunc, has_method, integrate
from nodebench.units import NO_STEP, UnitContext, UnitSpec
from nodebench.workloads import _demo_training as demo
from nodebench.workloads.base import check_adaptive_methods, dtype_of, seed_everything

NAME = "tolerance"
#: Under ``--executor ray`` the units run one at a time on one node holding all its CPUs: their
#: timings are compared across units, so they must come from one machine with nothing beside them.
RAY_PLACEMENT = "serial"
REFERENCE_TOL = 1e-12
#: The ODE-Net checkpoint of the committed MNIST standard run (relative to the repository root).
MNIST_CHECKPOINT = "results/runs/mnist/20261128T001325Z-87ceb0/checkpoints/odenet-seed0-epochs006.pt"
MNIST_VARIANT = "mnist_odenet"

PROTOCOL = """\
## Tolerance against NFE, numerical error, task error and time (paper Fig. 3a, 3b)

- Model (**ours**, the paper used MNIST): torchdiffeq's spiral demo network (Linear(2,50)-Tanh-
  Linear(50,2) on y**3, weights N(0, 0.1)), trained from the seed for `train_iterations` RMSprop steps
  (lr 1e-3, batches of 20 x 10 points, L1 loss, `nodebench.odeint` dopri5 at rtol 1e-7, atol 1e-9) on the
  demo's noise-free truth (y0 = [2, 0], t = linspace(0, 25, 1000)), in float32.
- Evaluation in `eval_dtype` (float64 by default, so that the error is the solver's, not float32's):
  the trained model solved from y0 over the whole trajectory (1000 output times) by each library and
  method at rtol = atol = tol for every tol in `tolerances` (`adams`, nodebench's variable-order
  Adams, only in nodebench: torchdiffeq has no adaptive Adams).
- Numerical error: RMS and max-abs difference from a float64 reference solve of the same model by
  nodebench dopri5 at rtol = atol = 1e-12; torchdiffeq's dopri5 at the same tolerance checks the
  reference (`reference_gap`, max-abs difference of the two independent implementations).
- Task metric: MSE of the solution against the data (the truth). NFE: evaluations of the model in
  one forward solve. Time: median of `repeats` forward solves without gradients after one warm-up,
  both libraries in the same process.
- Records: variant `<library>/<method>`, step = index into `tolerances`; metrics `tol`,
  `nfe_forward`, `error_rms`, `error_max`, `task_mse`, `time_forward` (s). Training: variant `train`,
  step = iteration, metric `loss_l1`. Reference: variant `reference`, metrics `nfe_forward`,
  `reference_gap`.
- **MNIST ODE-Net** (preset `mnist`; `mnist_checkpoint` set): instead of the spiral model, the trained
  ODE-Net of an `mnist` run (its committed checkpoint) on the first `mnist_test_size` test images (a
  subset, to keep the sweep to minutes on a CPU). The downsampled features are computed once; the ODE
  block (t in [0, 1]) is solved by nodebench with each of `methods` at rtol = atol = tol, in
  `eval_dtype`, for the whole subset as one batch; numerical error is against a float64 reference
  solve at rtol = atol = `mnist_reference_tol`, the task metric is the test error (%) of the subset
  after the head. Records:
  variant `mnist_odenet/nodebench/<method>` with `tol`, `nfe_forward`, `error_rms`, `error_max`,
  `test_error` (%), `time_forward` (s); variant `mnist_odenet/reference` with `nfe_forward`,
  `test_error`.
"""


@dataclass(frozen=True)
class Config:
    """Tolerance-sweep settings.

    Attributes:
        seeds: one trained model per seed.
        tolerances: rtol = atol values, loosest first.
        libraries: subset of ``("nodebench", "torchdiffeq")``.
        methods: adaptive methods; a library that lacks one (torchdiffeq: ``adams``, ``tsit5``) is
            left out for it.
        train_iterations: RMSprop steps of the demo's training.
        log_every: record the training loss every this many iterations.
        repeats: timed solves per setting (median recorded), after one warm-up.
        eval_dtype: ``"float64"`` or ``"float32"``.
        mnist_checkpoint: a trained ODE-Net checkpoint of the ``mnist`` workload; when set, the sweep
            runs on it (see :data:`PROTOCOL`) instead of the spiral model.
        mnist_test_size: test images of the MNIST sweep (the first ones of the test split).
        mnist_reference_tol: rtol = atol of the MNIST sweep's float64 reference solve.
    """

    seeds: tuple[int, ...] = (0,)
    tolerances: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
    libraries: tuple[str, ...] = LIBRARIES
    methods: tuple[str, ...] = ("dopri5",)
    train_iterations: int = 500
    log_every: int = 10
    repeats: int = 5
    eval_dtype: str = "float64"
    mnist_checkpoint: str = ""
    mnist_test_size: int = 200
    mnist_reference_tol: float = 1e-9


PRESETS = {
    "smoke": Config(
        tolerances=(1e-2, 1e-4, 1e-6), methods=("dopri5", "adams"), train_iterations=20, repeats=1
    ),
    "standard": Config(),
    "paper": Config(seeds=(0, 1, 2), train_iterations=2000, methods=("bosh3", "dopri5"), repeats=7),
    # Figure 3a/3b on the trained MNIST ODE-Net (the committed standard run's checkpoint), CPU-sized.
    # 1000 test images: the checkpoint misclassifies ~0.6%, so a subset of 200 showed 0 errors at
    # every tolerance; methods: the paper's solver family (adams) beside dopri5
    "mnist": Config(
        tolerances=(1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
        libraries=("nodebench",),
        methods=("dopri5", "adams"),
        repeats=2,
        mnist_checkpoint=MNIST_CHECKPOINT,
        mnist_test_size=1000,
        mnist_reference_tol=1e-7,
    ),
}


def _model_name(seed: int) -> str:
    return f"spiral-seed{seed}.pt"


def _train_and_reference(config: Config, recorder: UnitContext, seed: int, data: demo.DemoData) -> None:
    """Train the model, solve the reference, record both, and save them for the evaluation units."""
    seed_everything(seed)
    model = demo.DemoModel().to(data.y.device, data.y.dtype)
    generator = torch.Generator().manual_seed(seed)

    def log(i: int, loss: float) -> None:
        if i % config.log_every == 0 or i == config.train_iterations:
            recorder.record("train", seed, i, "loss_l1", loss)

    demo.train(model, data, config.train_iterations, generator, on_iteration=log)
    state = {name: value.clone() for name, value in model.state_dict().items()}
    reference = model.double()
    y0, t = data.y[0].double(), data.t.double()
    with torch.no_grad():
        counted = CountingFunc(reference)
        ref = integrate("nodebench", counted, y0, t, "dopri5", REFERENCE_TOL, REFERENCE_TOL)
        check = integrate("torchdiffeq", reference, y0, t, "dopri5", REFERENCE_TOL, REFERENCE_TOL)
    recorder.record("reference", seed, NO_STEP, "nfe_forward", counted.counts["nfe_forward"])
    recorder.record("reference", seed, NO_STEP, "reference_gap", (ref - check).abs().max())
    buffer = io.BytesIO()
    torch.save({"model": state, "reference": ref}, buffer)
    recorder.save(_model_name(seed), buffer.getvalue())


def _evaluate(
    config: Config, recorder: UnitContext, seed: int, library: str, method: str, data: demo.DemoData
) -> None:
    """Sweep the tolerances for one library and method and record every metric."""
    seed_everything(seed)
    saved = recorder.input(_model_name(seed))
    saved = torch.load(io.BytesIO(saved), map_location=data.y.device, weights_only=True)
    dtype = dtype_of(config.eval_dtype)
    device = data.y.device
    model = demo.DemoModel()
    model.load_state_dict(saved["model"])
    counted = CountingFunc(model.to(dtype=dtype, device=device))
    reference = saved["reference"].to(dtype=torch.float64, device=device)
    y0, t, truth = data.y[0].to(dtype), data.t.to(dtype), data.y.to(dtype)
    variant = f"{library}/{method}"
    for step, tol in enumerate(config.tolerances):
        with torch.no_grad():
            counted.counts["nfe_forward"] = 0
            y = integrate(library, counted, y0, t, method, tol, tol)
            nfe = counted.counts["nfe_forward"]
            seconds = median_time(
                lambda tol=tol: integrate(library, counted, y0, t, method, tol, tol),
                repeats=config.repeats,
                warmup=0,  # the counted solve above was the warm-up
                device=device,
            )
        error = y.double() - reference
        recorder.record(variant, seed, step, "tol", tol)
        recorder.record(variant, seed, step, "nfe_forward", nfe)
        recorder.record(variant, seed, step, "error_rms", error.pow(2).mean().sqrt())
        recorder.record(variant, seed, step, "error_max", error.abs().max())
        recorder.record(variant, seed, step, "task_mse", (y - truth).pow(2).mean())
        recorder.record(variant, seed, step, "time_forward", seconds, "s")


def _mnist_sweep(config: Config, recorder: UnitContext, seed: int, device: torch.device) -> None:
    """Sweep the tolerances on the trained MNIST ODE-Net's ODE block (see :data:`PROTOCOL`)."""
    from nodebench.data.mnist import load_mnist
    from nodebench.models.mnist import build_model
    from nodebench.workloads.mnist import to_input

    seed_everything(seed)
    state = torch.load(config.mnist_checkpoint, map_location=device, weights_only=False)
    model = build_model("odenet").to(device)
    model.load_state_dict(state["model"])
    model.eval()
    images, labels = load_mnist(split="test")
    images, labels = images[: config.mnist_test_size].to(device), labels[: config.mnist_test_size].to(device)
    dtype = dtype_of(config.eval_dtype)
    t = torch.tensor([0.0, 1.0], device=device)

    def test_error(z: torch.Tensor) -> float:
        logits = model.head(z.to(torch.float32))
        return float((logits.argmax(1) != labels).float().mean() * 100)

    with torch.no_grad():
        features = model.downsampling(to_input(images))
        func = model.features.func
        ref_func = CountingFunc(copy.deepcopy(func).double())
        tight = config.mnist_reference_tol
        reference = integrate("nodebench", ref_func, features.double(), t.double(), "dopri5", tight, tight)[
            -1
        ]
    recorder.record(
        f"{MNIST_VARIANT}/reference", seed, NO_STEP, "nfe_forward", ref_func.counts["nfe_forward"]
    )
    recorder.record(f"{MNIST_VARIANT}/reference", seed, NO_STEP, "test_error", test_error(reference), "%")
    counted = CountingFunc(copy.deepcopy(func).to(dtype))
    y0, tt = features.to(dtype), t.to(dtype)
    for method, step, tol in [(m, i, tol) for m in config.methods for i, tol in enumerate(config.tolerances)]:
        variant = f"{MNIST_VARIANT}/nodebench/{method}"
        with torch.no_grad():
            counted.counts["nfe_forward"] = 0
            z = integrate("nodebench", counted, y0, tt, method, tol, tol)[-1]
            nfe = counted.counts["nfe_forward"]
            seconds = median_time(
                lambda tol=tol, method=method: integrate("nodebench", counted, y0, tt, method, tol, tol),
                repeats=config.repeats,
                warmup=0,
                device=device,
            )
        error = z.double() - reference
        recorder.record(variant, seed, step, "tol", tol)
        recorder.record(variant, seed, step, "nfe_forward", nfe)
        recorder.record(variant, seed, step, "error_rms", error.pow(2).mean().sqrt())
        recorder.record(variant, seed, step, "error_max", error.abs().max())
        recorder.record(variant, seed, step, "test_error", test_error(z), "%")
        recorder.record(variant, seed, step, "time_forward", seconds, "s")


@functools.lru_cache(maxsize=2)
def _data(device: torch.device) -> demo.DemoData:
    """The demo's true trajectory on ``device`` (deterministic; built once per process)."""
    return demo.make_data(device=device)


def plan(config: Config) -> list[UnitSpec]:
    """Per seed: train one model (and its reference solve), then one sweep per library and method.

    With ``mnist_checkpoint`` set, sweep the trained MNIST ODE-Net instead (one unit per seed).
    """
    unknown = sorted(set(config.libraries) - set(LIBRARIES))
    if unknown:
        raise ValueError(f"libraries {unknown} are not among {LIBRARIES}")
    check_adaptive_methods(config.methods)
    if config.mnist_checkpoint:
        return [UnitSpec(f"mnist/seed={seed}", {"part": "mnist", "seed": seed}) for seed in config.seeds]
    specs = []
    for seed in config.seeds:
        train = f"train/seed={seed}"
        specs.append(UnitSpec(train, {"part": "train", "seed": seed}))
        for library in config.libraries:
            for method in [m for m in config.methods if has_method(library, m)]:
                params = {"part": "sweep", "seed": seed, "library": library, "method": method}
                specs.append(UnitSpec(f"{library}/{method}/seed={seed}", params, depends_on=(train,)))
    return specs


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Train (and solve the reference), sweep one library and method, or sweep the MNIST ODE-Net."""
    p, config = spec.params, unit.config
    if p["part"] == "mnist":
        _mnist_sweep(config, unit, p["seed"], unit.device)
    elif p["part"] == "train":
        _train_and_reference(config, unit, p["seed"], _data(unit.device))
    else:
        _evaluate(config, unit, p["seed"], p["library"], p["method"], _data(unit.device))
