"""Spiral generator and latent-ODE / RNN models (paper Section 5.1)."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from nodebench.data.latent_spirals import ObsBatch, SpiralConfig, make_spirals, observation_batch
from nodebench.models.latent import LatentODE, RNNBaseline, gaussian_log_prob, kl_normal_std_normal


def _has_odeint() -> bool:
    try:
        from nodebench import odeint, odeint_adjoint  # noqa: F401
    except ImportError:
        return False
    return True


needs_odeint = pytest.mark.skipif(not _has_odeint(), reason="nodebench.odeint is not importable yet")

SMALL = SpiralConfig(n_spirals=40, seed=3)


@pytest.fixture(scope="module")
def small():
    return make_spirals(SMALL, dtype=torch.float64)


def test_shapes_and_grid(small):
    n, cfg = SMALL.n_spirals, SMALL
    assert small.t.shape == (200,)
    assert small.truth.shape == small.noisy.shape == (n, 200, 2)
    assert small.orient.shape == small.phase0.shape == (n,)
    assert {m: tuple(i.shape) for m, i in small.obs_idx.items()} == {30: (n, 30), 50: (n, 50), 100: (n, 100)}
    assert small.t[0] == 0
    torch.testing.assert_close(small.t.diff(), torch.full((199,), 6 * math.pi / 499))
    assert small.t_obs.shape == small.t_extrap.shape == (100,)
    lo, hi = cfg.start_min_index * cfg.dt, cfg.start_max_index * cfg.dt
    assert ((small.phase0 >= lo) & (small.phase0 <= hi)).all()
    single = make_spirals(SMALL, dtype=torch.float32, device="cpu")
    assert single.noisy.dtype == torch.float32 and single.obs_idx[30].dtype == torch.long
    torch.testing.assert_close(single.noisy, small.noisy.float())


def test_same_seed_identical_different_seed_different(small):
    again = make_spirals(SMALL)
    other = make_spirals(SpiralConfig(n_spirals=40, seed=4))
    for name in ("t", "truth", "noisy", "orient", "phase0", "train_idx", "test_idx"):
        assert torch.equal(getattr(small, name), getattr(again, name)), name
    for m in SMALL.obs_counts:
        assert torch.equal(small.obs_idx[m], again.obs_idx[m])
    assert not torch.equal(small.noisy, other.noisy)
    assert not torch.equal(small.phase0, other.phase0)
    assert not torch.equal(small.obs_idx[30], other.obs_idx[30])


def test_half_clockwise_half_counterclockwise(small):
    assert (small.orient == 1).sum() == (small.orient == -1).sum() == SMALL.n_spirals // 2
    d = small.truth.diff(dim=1)
    cross = d[:, :-1, 0] * d[:, 1:, 1] - d[:, :-1, 1] * d[:, 1:, 0]
    assert (cross.sign() == small.orient.unsqueeze(1)).all()
    # each spiral starts somewhere else
    assert small.truth[:, 0].unique(dim=0).shape[0] == SMALL.n_spirals


def test_noise_is_gaussian_with_given_std():
    data = make_spirals(SpiralConfig(n_spirals=100, noise_std=0.3, seed=0))
    resid = data.noisy - data.truth
    assert abs(resid.mean().item()) < 0.01
    assert resid.std().item() == pytest.approx(0.3, rel=0.02)
    clean = make_spirals(SpiralConfig(n_spirals=4, train_frac=0.5, noise_std=0.0))
    assert torch.equal(clean.noisy, clean.truth)


def test_start_max_bounds_the_starting_phase():
    cfg = SpiralConfig(n_spirals=200, start_max=150, seed=1)
    data = make_spirals(cfg)
    assert cfg.start_max_index == 150 and SpiralConfig().start_max_index == 300
    assert data.phase0.min() >= 100 * cfg.dt and data.phase0.max() <= 150 * cfg.dt
    assert data.phase0.max() > 145 * cfg.dt  # the whole range is used


def test_subsampling_without_replacement(small):
    for m, idx in small.obs_idx.items():
        assert idx.shape[1] == m
        assert (idx.diff(dim=1) > 0).all()  # sorted and unique
        assert idx.min() >= 0 and idx.max() < SMALL.obs_points
    assert torch.equal(small.obs_idx[100], torch.arange(100).expand(SMALL.n_spirals, -1))
    assert torch.isin(small.obs_idx[30], small.obs_idx[50]).all()  # nested draws
    assert len({tuple(row.tolist()) for row in small.obs_idx[30]}) == SMALL.n_spirals


def test_train_test_split(small):
    train, test = small.train_idx, small.test_idx
    assert not torch.isin(train, test).any()
    assert torch.equal(torch.cat((train, test)).sort().values, torch.arange(SMALL.n_spirals))
    assert len(train) == 32 and len(test) == 8
    assert small.orient[train].sum() == 0 and small.orient[test].sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_spirals": 7}, "n_spirals"),
        ({"obs_counts": (30, 101)}, "obs_counts"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"train_frac": 1.0}, "train_frac"),
        ({"extrap_points": 400}, "start_min_index"),
        ({"start_max": 301}, "start_max"),
        ({"start_max": 50}, "start_min_index"),
    ],
)
def test_config_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SpiralConfig(**kwargs)


def test_observation_batch(small):
    rows = small.train_idx[:5]
    batch = observation_batch(small, 30, rows)
    idx = small.obs_idx[30][rows]
    assert batch.times.shape == (5, 30) and batch.values.shape == (5, 30, 2)
    torch.testing.assert_close(batch.times, small.t[idx])
    for b, r in enumerate(rows):
        torch.testing.assert_close(batch.values[b], small.noisy[r, idx[b]])
    torch.testing.assert_close(batch.gaps[:, 0], batch.times[:, 0])
    torch.testing.assert_close(batch.gaps[:, 1:], batch.times.diff(dim=1))
    clean = observation_batch(small, 30, rows, noisy=False)
    torch.testing.assert_close(clean.values[0], small.truth[rows[0], idx[0]])
    assert observation_batch(small, 50).times.shape == (SMALL.n_spirals, 50)
    with pytest.raises(ValueError, match="n must be one of"):
        observation_batch(small, 40)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(6, 4), torch.randn(6, 4)
    q = Normal(mu, torch.exp(0.5 * logvar))
    expected = kl_divergence(q, Normal(torch.zeros(4), torch.ones(4))).sum(-1)
    torch.testing.assert_close(kl_normal_std_normal(mu, logvar), expected)
    assert kl_normal_std_normal(torch.zeros(4), torch.zeros(4)) == 0


def test_gaussian_log_prob_matches_torch_distributions():
    x, mean, log_std = torch.randn(5, 2), torch.randn(5, 2), torch.randn(5, 2)
    expected = Normal(mean, log_std.exp()).log_prob(x)
    torch.testing.assert_close(gaussian_log_prob(x, mean, log_std), expected)
    torch.testing.assert_close(gaussian_log_prob(x, mean, -1.0), Normal(mean, math.exp(-1.0)).log_prob(x))


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="solver"):
        LatentODE(solver="euler")
    with pytest.raises(ValueError, match="cell"):
        RNNBaseline(cell="lstm")
    with pytest.raises(ValueError, match="obs_std"):
        LatentODE(obs_std=0.0)


@needs_odeint
def test_latent_ode_forward(small):
    model = LatentODE(cell="rnn")
    batch = observation_batch(small, 30, small.train_idx[:4])
    loss, parts = model.elbo(batch, n_samples=3)
    assert loss.shape == () and torch.isfinite(loss)
    assert set(parts) == {"elbo", "log_lik", "kl", "mse"}
    assert parts["elbo"] == pytest.approx(-loss.item())
    assert parts["elbo"] == pytest.approx(parts["log_lik"] - parts["kl"])
    assert model.predict(batch, small.t_extrap).shape == (4, 100, 2)
    assert model.predict(batch, small.t).shape == (4, 200, 2)
    with pytest.raises(ValueError, match="batch.values"):
        model.loss(ObsBatch(times=batch.times, values=batch.values[..., :1], gaps=batch.gaps))


@needs_odeint
def test_kl_weight_scales_only_the_kl_term(small):
    model = LatentODE()
    batch = observation_batch(small, 30, small.train_idx[:4])
    losses = {}
    for weight in (0.0, 0.5, 1.0):
        loss, parts = model.elbo(batch, generator=torch.Generator().manual_seed(0), kl_weight=weight)
        losses[weight] = loss.item()
        assert parts["elbo"] == pytest.approx(parts["log_lik"] - parts["kl"])
    assert losses[1.0] == pytest.approx(-parts["elbo"])
    assert losses[0.0] == pytest.approx(-parts["log_lik"])
    assert losses[0.5] == pytest.approx(-(parts["log_lik"] - 0.5 * parts["kl"]))
    with pytest.raises(ValueError, match="kl_weight"):
        model.elbo(batch, kl_weight=-1.0)


@needs_odeint
def test_latent_ode_gathers_each_series_own_times(small):
    """Solving on the union of times and gathering equals solving each series on its own times."""
    from nodebench import odeint

    model = LatentODE(rtol=1e-10, atol=1e-10)
    batch = observation_batch(small, 30, small.train_idx[:3])
    assert not torch.equal(batch.times[0], batch.times[1])
    z0 = torch.randn(2, 3, 4)
    pred = model.decode_at(z0, batch.times)
    for b in range(3):
        t, inverse = torch.cat((torch.zeros(1), batch.times[b])).unique(return_inverse=True)
        own = model.decoder(odeint(model.dynamics, z0[:, b], t, rtol=1e-10, atol=1e-10)[inverse[1:]])
        torch.testing.assert_close(pred[:, b], own.transpose(0, 1), rtol=1e-7, atol=1e-7)


@needs_odeint
def test_adjoint_and_direct_gradients_agree(small):
    batch = observation_batch(small, 30, small.train_idx[:3])
    grads = []
    for solver in ("odeint", "odeint_adjoint"):
        torch.manual_seed(1)
        model = LatentODE(solver=solver, rtol=1e-9, atol=1e-9)
        loss, _ = model.elbo(batch, generator=torch.Generator().manual_seed(2))
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for direct, adjoint in zip(*grads):  # normwise: the adjoint re-solves backwards, ~1e-5 apart at tol 1e-9
        assert (adjoint - direct).norm() <= 1e-4 * direct.norm()


def test_rnn_baseline_forward(small):
    model = RNNBaseline()
    batch = observation_batch(small, 50, small.train_idx[:4])
    loss, parts = model.nll(batch)
    assert loss.shape == () and torch.isfinite(loss) and parts["nll"] == pytest.approx(loss.item())
    pred = model.predict(batch, small.t_extrap)
    assert pred.shape == (4, 100, 2)
    single = observation_batch(small, 50, small.train_idx[2:3])
    torch.testing.assert_close(model.predict(single, small.t_extrap)[0], pred[2])
    with pytest.raises(ValueError, match="t_query must start after"):
        model.predict(batch, small.t)
    with pytest.raises(ValueError, match="n >= 2"):
        one = make_spirals(SpiralConfig(n_spirals=4, train_frac=0.5, obs_counts=(1,)))
        model.loss(observation_batch(one, 1))


def _train(model, batch, steps: int = 30) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


@pytest.mark.parametrize("name", ["latent_ode", "rnn"])
def test_a_few_adam_steps_reduce_the_loss(small, name):
    if name == "latent_ode" and not _has_odeint():
        pytest.skip("nodebench.odeint is not importable yet")
    model = LatentODE() if name == "latent_ode" else RNNBaseline()
    first, last = _train(model, observation_batch(small, 30, small.train_idx[:8]))
    assert last < 0.5 * first


def test_rnn_predict_within_is_causal(small):
    """At any time: the prediction from the observations before it, as `predict` on the truncated series."""
    model = RNNBaseline()
    batch = observation_batch(small, 30, small.train_idx[:3])
    pred = model.predict_within(batch, small.t_obs)
    assert pred.shape == (3, 100, 2)
    first = small.obs_idx[30][small.train_idx[:3], 0]
    for b in range(3):
        assert torch.isnan(pred[b, : first[b] + 1]).all() and torch.isfinite(pred[b, first[b] + 1 :]).all()
        for j in (0, 7, 29):
            t_next = small.t_obs[small.t_obs > batch.times[b, j]][:1]
            if t_next.numel() == 0:
                continue
            sub = ObsBatch(
                times=batch.times[b : b + 1, : j + 1],
                values=batch.values[b : b + 1, : j + 1],
                gaps=batch.gaps[b : b + 1, : j + 1],
            )
            k = int((small.t_obs < t_next).sum())
            torch.testing.assert_close(pred[b, k], model.predict(sub, t_next)[0, 0])
    # one-step-ahead at observation times: the means the NLL is trained on
    mean, _, _ = model._run(batch.values[:, :-1], batch.gaps[:, 1:])
    at_obs = model.predict_within(batch, batch.times[0])[0, 1:]
    torch.testing.assert_close(at_obs, mean[0])
    later = model.predict_within(batch, small.t_extrap[:1])
    torch.testing.assert_close(later[:, 0], model.predict(batch, small.t_extrap[:1])[:, 0])


def _tanh_rnn_by_hand(model: RNNBaseline, inputs: torch.Tensor) -> torch.Tensor:
    """The one-step-ahead means of a vanilla tanh RNN, written out: h = tanh(W x + b + U h + c)."""
    rnn = model.rnn
    h = inputs.new_zeros(inputs.shape[0], rnn.hidden_size)
    means = []
    for i in range(inputs.shape[1]):
        pre = inputs[:, i] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        h = torch.tanh(pre)
        means.append(model.head(h)[:, : model.obs_dim])
    return torch.stack(means, dim=1)


@pytest.mark.parametrize("time_input", [True, False])
def test_vanilla_rnn_forward_with_and_without_time_gap(small, time_input):
    """The paper's RNN: 25 tanh units over (x_i, t_{i+1} - t_i), or over x_i alone."""
    torch.manual_seed(0)
    model = RNNBaseline(hidden=25, cell="rnn", time_input=time_input).double()
    assert isinstance(model.rnn, torch.nn.RNN) and model.rnn.nonlinearity == "tanh"
    assert model.rnn.hidden_size == 25 and model.rnn.input_size == (3 if time_input else 2)
    batch = observation_batch(small, 30, small.train_idx[:5])
    gaps_next = batch.gaps[:, 1:]
    inputs = batch.values[:, :-1]
    if time_input:
        inputs = torch.cat((inputs, gaps_next.unsqueeze(-1)), -1)
    _, parts = model.nll(batch)
    mean, _, _ = model._run(batch.values[:, :-1], gaps_next)
    torch.testing.assert_close(mean, _tanh_rnn_by_hand(model, inputs))
    assert parts["mse"] == pytest.approx((mean - batch.values[:, 1:]).square().mean().item())
    # the same values at other times: only the model with the time input notices
    stretched = ObsBatch(times=2 * batch.times, values=batch.values, gaps=2 * batch.gaps)
    same = torch.allclose(model.nll(stretched)[0], model.nll(batch)[0])
    assert same != time_input
    pred, pred_stretched = model.predict(batch, small.t_extrap), model.predict(stretched, 2 * small.t_extrap)
    assert pred.shape == (5, 100, 2) and torch.isfinite(pred).all()
    assert torch.allclose(pred, pred_stretched) != time_input
    if not time_input:  # extrapolation: one autoregressive step per query time, fed its own means
        _, h = model.rnn(batch.values[:, :-1])
        first, _, h = model._run(batch.values[:, -1:], batch.gaps[:, -1:], h)
        torch.testing.assert_close(pred[:, :1], first)
        second, _, _ = model._run(first, batch.gaps[:, :1], h)
        torch.testing.assert_close(pred[:, 1:2], second)


@pytest.mark.parametrize("geometry", ["torchdiffeq", "archimedean"])
def test_spiral_geometry(geometry):
    """Both geometries turn the stated way; the Archimedean pair are mirror images of equal size."""
    data = make_spirals(SpiralConfig(n_spirals=40, seed=5, geometry=geometry), dtype=torch.float64)
    ccw = data.orient > 0
    centre = 5.0 * data.orient.double().unsqueeze(-1)
    offset = data.truth - torch.stack((centre.expand(-1, 200), torch.zeros(40, 200, dtype=torch.float64)), -1)
    step = offset.diff(dim=1)
    turn = offset[:, :-1, 0] * step[..., 1] - offset[:, :-1, 1] * step[..., 0]  # sign of the rotation
    assert (turn[ccw] > 0).all() and (turn[~ccw] < 0).all()
    radius = offset.norm(dim=-1)
    phase = data.phase0.unsqueeze(-1) + data.t
    torch.testing.assert_close(radius[ccw], 0.3 * phase[ccw])
    if geometry == "archimedean":
        torch.testing.assert_close(radius[~ccw], 0.3 * phase[~ccw])
        mirrored = offset[~ccw] * torch.tensor([1.0, -1.0], dtype=torch.float64)
        angle = phase[~ccw]
        torch.testing.assert_close(
            mirrored, torch.stack((angle.cos(), angle.sin()), -1) * radius[~ccw, :, None]
        )
    else:  # hyperbolic clockwise arm: radius 15 / (6 pi + 1 - phase)
        torch.testing.assert_close(radius[~ccw], 15.0 / (6 * math.pi + 1 - phase[~ccw]))
    with pytest.raises(ValueError, match="geometry"):
        SpiralConfig(geometry="log")
