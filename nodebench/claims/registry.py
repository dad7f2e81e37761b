"""Every claim of the paper (Chen et al., NeurIPS 2018) and of the seed slides that nodebench checks, once.

Each :class:`~nodebench.claims.core.Claim` names the paper's value and where it stands, the evidence to
select (workload, presets in order of preference, variants, config), how ours is computed (a measure
from :mod:`nodebench.claims.measures`) and the rule of :mod:`nodebench.claims.policy` that decides it.
"""

from __future__ import annotations

from nodebench.claims import measures, policy
from nodebench.claims.core import Claim
from nodebench.claims.evidence import Spec
from nodebench.claims.table2 import PAPER_COUNTS, PAPER_RATIO
from nodebench.schema.mnist import PAPER_TABLE1

#: MNIST presets for Table 1 and Figure 3c/3d over epochs, most faithful first: the paper's protocol,
#: the MLP alone at it, the schedule compressed to a budget, then our 6-epoch standard.
MNIST_TABLE1 = ("paper", "paper-mlp", "budget", "standard")
CITABLE = ("paper", "standard")
_MNIST_LABELS = {"mlp": "1-layer MLP", "resnet": "ResNet", "rknet": "RK-Net", "odenet": "ODE-Net"}


def _table1(model: str) -> Claim:
    paper = PAPER_TABLE1[model]
    return Claim(
        id=f"table1.{model}",
        label=f"Table 1, {_MNIST_LABELS[model]}: test error",
        short=f"{_MNIST_LABELS[model]} error",
        source="Table 1",
        paper=f"{paper['test_error_pct']:.2f}% ({paper['params_millions']:.2f}M params)",
        kind="ratio to a number",
        spec=Spec("mnist", MNIST_TABLE1, variants=model),
        measure=measures.table1_error(model),
        rule=policy.RATIO,
        how="test error on the 10,000 test images after the last epoch, per seed; mean over seeds",
    )


def _figure3ab(key: str, panel: str, model: str, spec: Spec, task: tuple[str, str]) -> Claim:
    if panel == "a":
        return Claim(
            id=f"figure3a.{key}",
            label=f"Figure 3a: NFE vs numerical error ({model})",
            short=key.replace(".", " ").replace("spiral", "spiral demo").replace("mnist", "MNIST"),
            source="Figure 3a",
            paper="tighter tolerance: more NFE, less error",
            kind="trend",
            spec=spec,
            measure=measures.figure3a(*task),
            rule=policy.TREND,
            how="a tolerance sweep of the trained model: Spearman correlations of the tolerance with the "
            "forward NFE (expected negative) and with the RMS error against a tight reference (positive)",
        )
    return Claim(
        id=f"figure3b.{key}",
        label=f"Figure 3b: NFE vs wall time ({model})",
        short=key.replace(".", " ").replace("spiral", "spiral demo").replace("mnist", "MNIST"),
        source="Figure 3b",
        paper="time grows with NFE",
        kind="trend",
        spec=spec,
        measure=measures.figure3b,
        rule=policy.TREND,
        how="the same sweep: Spearman correlation of the forward NFE with the median wall time of a solve",
    )


def _figure3c_iterations(method: str) -> Claim:
    return Claim(
        id=f"figure3c.iterations.{method}",
        label=f"Figure 3c per iteration: ODE-Net trained with {method}",
        short=f"MNIST {method} per iteration",
        source="Figure 3c",
        paper="backward ≈ forward / 2",
        kind="fraction",
        spec=Spec(
            "mnist",
            ("figure3", "figure3-adams"),
            variants="odenet/iterations",
            config={"method": (method, "dopri5")},
        ),
        measure=measures.figure3c_iterations,
        rule=policy.HALF,
        how="forward and backward NFE of the ODE block in single training iterations; median ratio",
    )


_TOL_MNIST = ("test_error", "test error %")
_TOL_SPIRAL = ("task_mse", "task MSE")
_SWEEP = "mnist_odenet/nodebench/"  # the tolerance workload's MNIST ODE-Net sweep, by method

CLAIMS: tuple[Claim, ...] = (
    *(_table1(model) for model in ("mlp", "resnet", "rknet", "odenet")),
    Claim(
        id="memory",
        label="Table 1 memory: adjoint O(1), RK-Net O(L~), ResNet O(L) in depth",
        short="memory classes",
        source="Table 1",
        paper="O(1) vs O(L~) vs O(L)",
        kind="memory class",
        spec=Spec("memory", CITABLE),
        measure=measures.memory_classes,
        rule=policy.MEMORY,
        how="bytes saved for backward by one forward and backward pass of the MNIST ODE block (RK4, L "
        "steps) or an L-block ResNet; slope in L by least squares, relative to direct backpropagation's",
    ),
    *(
        Claim(
            id=f"table2.rmse.{model}",
            label=f"Table 2, {label}: extrapolation RMSE at n = 30/50/100",
            short=f"{label} RMSE",
            source="Table 2",
            paper=measures.PAPER_TABLE2_TEXT[paper_model],
            kind="not comparable",
            spec=Spec("latent", CITABLE, variants=rf"{model}/n=\d+"),
            measure=measures.table2_rmse(model),
            rule=policy.UNPUBLISHED_SCALE,
            how="RMSE over the 100 extrapolated points of the test spirals against the noise-free truth, "
            "per seed; mean over seeds (and divided by the training data's coordinate std, train_std)",
        )
        for model, paper_model, label in (
            ("rnn_tanh", "rnn", "RNN"),
            ("latent_ode", "latent_ode", "Latent ODE"),
        )
    ),
    Claim(
        id="table2.ordering",
        label="Table 2: latent ODE below the RNN at every n",
        short="ordering",
        source="Table 2",
        paper="yes, at n = 30, 50, 100",
        kind="ordering",
        spec=Spec("latent", CITABLE, variants=r"(latent_ode|rnn_tanh|rnn_tanh_nodt|gru)/n=\d+"),
        measure=measures.table2_ordering,
        rule=policy.ORDERING,
        how="mean extrapolation RMSE over seeds of the latent ODE against the paper's RNN (tanh, Δt "
        "input) at each n",
    ),
    Claim(
        id="table2.ratio",
        label="Table 2: ratio latent ODE / RNN at n = 30/50/100",
        short="ratio",
        source="Table 2",
        paper="/".join(f"{PAPER_RATIO[n]:.2f}" for n in PAPER_COUNTS),
        kind="ratio to a number",
        spec=Spec("latent", CITABLE, variants=r"(latent_ode|rnn_tanh)/n=\d+"),
        measure=measures.table2_ratio,
        rule=policy.RATIO,
        how="latent ODE RMSE over the tanh RNN's, per seed on the same data set, mean over seeds, at each n",
    ),
    *(
        _figure3ab(key, panel, model, spec, task)
        for key, model, spec, task in (
            (
                "mnist.dopri5",
                "MNIST ODE-Net, dopri5",
                Spec("tolerance", ("mnist",), _SWEEP + "dopri5"),
                _TOL_MNIST,
            ),
            (
                "mnist.adams",
                "MNIST ODE-Net, adams",
                Spec("tolerance", ("mnist",), _SWEEP + "adams"),
                _TOL_MNIST,
            ),
            ("spiral", "spiral-demo model", Spec("tolerance", CITABLE, "nodebench/dopri5"), _TOL_SPIRAL),
        )
        for panel in ("a", "b")
    ),
    Claim(
        id="figure3c.epochs",
        label="Figure 3c: NFE backward vs forward (MNIST ODE-Net, epoch means)",
        short="MNIST dopri5, epoch means",
        source="Figure 3c",
        paper="backward ≈ forward / 2",
        kind="fraction",
        spec=Spec("mnist", ("paper", "budget", "standard"), variants="odenet"),
        measure=measures.figure3c_epochs,
        rule=policy.HALF,
        how="ODE-Net's forward and backward NFE per training iteration, averaged over each epoch; median "
        "over epochs of their ratio",
    ),
    Claim(
        id="figure3d",
        label="Figure 3d: NFE forward over training (MNIST ODE-Net)",
        short="MNIST ODE-Net",
        source="Figure 3d",
        paper="rises with training",
        kind="ordering",
        spec=Spec("mnist", ("paper", "budget", "standard"), variants="odenet"),
        measure=measures.figure3d_rise,
        rule=policy.ORDERING,
        how="ODE-Net's forward NFE per iteration, the last epoch's mean above the first's, per seed",
    ),
    Claim(
        id="figure3c.paper_solver",
        label="Figure 3c under the paper's solver (MNIST ODE-Net, LSODA through scipy)",
        short="MNIST LSODA (the study)",
        source="Figure 3c",
        paper="backward ≈ forward / 2",
        kind="fraction",
        spec=Spec("figure3c", ("paper", "standard"), variants=r"mnist/.*"),
        measure=measures.figure3c_study,
        rule=policy.HALF,
        how="the Figure 3c study's cells on the MNIST ODE-Net: the adjoint trained with scipy's LSODA in "
        "both directions and the full backward norm, forward and backward NFE per iteration; median "
        "ratio over those cells",
    ),
    _figure3c_iterations("dopri5"),
    _figure3c_iterations("adams"),
    Claim(
        id="figure3c.spiral_demo",
        label="Figure 3c on the spiral-demo model (adjoint, dopri5, over training)",
        short="spiral demo",
        source="Figure 3c",
        paper="backward ≈ forward / 2",
        kind="fraction",
        spec=Spec("nfe", CITABLE, variants=r"nodebench/seminorm/tol=.*"),
        measure=measures.nfe_checkpoints,
        rule=policy.HALF,
        how="forward and backward NFE of one adjoint loss over a fixed batch at checkpoints of training, "
        "at each tolerance (seminorm); median ratio over checkpoints and tolerances",
    ),
    Claim(
        id="figure3c.spiral",
        label="Figure 3c on the spiral examples (adjoint, dopri5)",
        short="spiral examples",
        source="Figure 3c",
        paper="backward ≈ forward / 2",
        kind="fraction",
        spec=Spec("spiral", CITABLE, variants=r"example[12]/adjoint/dopri5"),
        measure=measures.spiral_adjoint_ratio,
        rule=policy.HALF,
        how="backward over forward NFE per training iteration, mean over training per variant and seed; "
        "median over those",
    ),
    Claim(
        id="slides.example1",
        label="Slides Example 1: learn W of dz/dt = Wz",
        short="Example 1",
        source="slides",
        paper="learned W ≈ W (plot only)",
        kind="threshold",
        spec=Spec("spiral", CITABLE, variants=r"example1/.*"),
        measure=measures.learned_w,
        rule=policy.BELOW,
        how="largest entry of |W - W_true| of the learned linear layer after training, per variant and seed",
    ),
    Claim(
        id="slides.example2",
        label="Slides Example 2: learn blended spirals",
        short="Example 2",
        source="slides",
        paper="fitted trajectory (plot only)",
        kind="drop",
        spec=Spec("spiral", CITABLE, variants=r"example2/.*"),
        measure=measures.trajectory_drop,
        rule=policy.DROP,
        how="MSE of the learned model's trajectory against the noise-free truth over the whole span, "
        "untrained against trained, per variant and seed",
    ),
)

#: Claims by id.
BY_ID = {claim.id: claim for claim in CLAIMS}
