"""Diagnostics: exact on hand-built inputs, the tutorial's claims, zero cost to results."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_train import small_config

from actlab import activations, build, diagnostics, models, steps, train, writers


def _stats(spec, z, eps=0.01):
  """activation_stats of one layer whose pre-activation is `z`, as floats."""
  stats = diagnostics.activation_stats({"layer:preactivation": (jnp.asarray(z),)}, spec, eps)
  return {k: float(v["layer"]) for k, v in stats.items()}


def test_relu_units_on_the_zero_side_are_dead_not_saturated():
  relu = activations.get("relu")
  # 4 examples x 3 units: unit 0 never positive, unit 1 once, unit 2 exactly 0.
  z = jnp.array([[-1.0, -2.0, 0.0], [-3.0, 5.0, 0.0], [-0.5, -1.0, 0.0], [-2.0, -0.1, 0.0]])
  d = diagnostics.elementwise_derivative(relu, z)
  np.testing.assert_array_equal(d, (z > 0).astype(jnp.float32))
  assert float(diagnostics.dead_fraction(d, 0.01)) == pytest.approx(2 / 3)
  # Conv layout: a unit (channel) is alive if any example or position is.
  conv = jnp.zeros((2, 3, 3, 4)).at[1, 2, 0, 3].set(1.0)
  assert float(diagnostics.dead_fraction(conv, 0.01)) == 0.75
  stats = _stats("relu", z)
  assert stats["dead"] == pytest.approx(2 / 3)
  assert stats["near_dead"] == pytest.approx(2 / 3)
  assert stats["saturated"] == 0.0  # relu has no saturating tail
  assert stats["act_mean"] == pytest.approx(5 / 12)
  # Unit 1 is positive once in 200 examples: near-dead (mean f' 0.005), not dead.
  z = jnp.full((200, 2), -1.0).at[0, :].set(1.0).at[:, 1].set(1.0)
  assert _stats(relu, z)["dead"] == 0.0
  assert _stats(relu, z)["near_dead"] == 0.5


def test_leaky_relu_slope_equal_to_the_threshold_counts_as_small():
  # f' = 0.01 below zero; eps = 0.01 and max|f'| = 1: 0.01 <= 0.01 counts.
  z = jnp.array([[-1.0, -2.0, 3.0], [-3.0, -4.0, -5.0]])
  stats = _stats("leaky_relu", z)
  assert stats["dead"] == pytest.approx(2 / 3)
  assert stats["near_dead"] == pytest.approx(2 / 3)
  assert stats["saturated"] == 0.0  # the negative side is unbounded, not a tail
  # A slope just above the threshold does not count.
  assert _stats("leaky_relu(negative_slope=0.011)", z)["dead"] == 0.0
  # The same function as a plain callable, judged from a grid.
  assert _stats(lambda x: jnp.where(x >= 0, x, 0.01 * x), z)["dead"] == pytest.approx(2 / 3)


def test_elu_negative_tail_is_saturated_and_units_on_it_dead():
  # elu' = exp(z) below zero: <= 0.01 iff z <= log(0.01) = -4.605.
  z = jnp.array([[-10.0, -1.0, 2.0, -20.0], [-6.0, -4.0, -3.0, -5.0]])
  stats = _stats("elu", z)
  assert stats["saturated"] == pytest.approx(4 / 8)  # -10, -20, -6, -5
  assert stats["dead"] == pytest.approx(2 / 4)  # units 0 and 3
  assert stats["near_dead"] == pytest.approx(2 / 4)
  profile = diagnostics.slope_profile("elu", 0.01)
  assert profile.max_slope == 1.0 and profile.right_tail == np.inf
  assert profile.left_tail == pytest.approx(np.log(0.01), abs=2e-3)


@pytest.mark.parametrize("spec, max_slope", [("sigmoid", 0.25), ("tanh", 1.0)])
def test_sigmoid_and_tanh_saturate_on_both_tails_relative_to_their_max_slope(spec, max_slope):
  f = activations.get(spec)
  z = jnp.array([0.0, 1.0, 5.0, 6.5, -7.0, 10.0, -2.0, 60.0])
  d = diagnostics.elementwise_derivative(f, z)
  small = np.abs(np.asarray(d)) <= 0.01 * max_slope
  assert _stats(spec, z)["saturated"] == pytest.approx(small.mean())
  assert 0 < small.mean() < 1
  assert diagnostics.slope_profile(spec, 0.01).max_slope == max_slope
  # sigmoid: 0.25 * 0.01 is reached at |z| = 5.99, not at 4.6 as for an absolute 0.01.
  if spec == "sigmoid":
    assert small.tolist() == [False, False, False, True, True, True, False, True]


def test_relu6_saturates_above_six_only():
  z = jnp.array([[-3.0, 7.0], [-1.0, 8.0], [2.0, 6.5]])
  stats = _stats("relu6", z)
  assert stats["saturated"] == pytest.approx(3 / 6)
  assert stats["dead"] == 0.5  # unit 1 sits on the upper plateau
  assert stats["near_dead"] == 0.5


def test_callables_without_facts_are_profiled_on_a_grid():
  by_grid = diagnostics.slope_profile(lambda x: jnp.tanh(x), 0.01)
  by_facts = diagnostics.slope_profile("tanh", 0.01)
  assert by_grid.max_slope == pytest.approx(by_facts.max_slope)
  assert by_grid.left_tail == pytest.approx(by_facts.left_tail)
  assert by_grid.right_tail == pytest.approx(by_facts.right_tail)
  sig = diagnostics.slope_profile(jax.nn.sigmoid, 0.01)
  assert sig.max_slope == pytest.approx(0.25)
  assert np.isfinite(sig.left_tail) and np.isfinite(sig.right_tail)
  # An unbounded slope is judged against the identity's slope, 1.
  assert diagnostics.slope_profile(jnp.exp, 0.01).max_slope == 1.0
  assert diagnostics.slope_profile("exponential", 0.01).max_slope == 1.0
  # A rectifier's zero side is no tail, known or not.
  relu_like = diagnostics.slope_profile(lambda x: jnp.maximum(x, 0.0), 0.01)
  assert relu_like.left_tail == -np.inf and relu_like.right_tail == np.inf
  # The registry's own objects use its facts.
  assert diagnostics.slope_profile(activations.get("gelu"), 0.01).max_slope == (
    activations.describe("gelu").max_slope
  )


def test_collapsed_linear_map_reproduces_identity_network():
  model = models.MLP(activation=activations.get("identity"), depth=4, width=32)
  x = jax.random.normal(jax.random.key(0), (16, 8, 8, 3))
  params = model.init(jax.random.key(1), x)["params"]
  # Non-zero biases, as after training.
  params = jax.tree.map(lambda p: p + 0.1 * jnp.ones_like(p), params)
  w, b = diagnostics.collapse_linear(params)
  assert w.shape == (8 * 8 * 3, 10)
  np.testing.assert_allclose(
    x.reshape(16, -1) @ w + b[None, :], model.apply({"params": params}, x), rtol=1e-5, atol=1e-5
  )


def _first_over_last(act, seed, depth=20):
  model = models.MLP(activation=activations.get(act), depth=depth, width=128)
  x = jax.random.normal(jax.random.key(100 + seed), (128, 32, 32, 3))
  y = jax.random.randint(jax.random.key(200 + seed), (128,), 0, 10)
  params = model.init(jax.random.key(seed), x[:1])["params"]

  def loss(p):
    logits = model.apply({"params": p}, x)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(128), y])

  norms = diagnostics.kernel_norms(jax.grad(loss)(params))
  order = [models.layer_name(i) for i in range(depth + 1)]
  return diagnostics.relative_first_layer_gradient(norms, order)


@pytest.mark.parametrize("seed", range(3))
def test_first_layer_gradient_vanishes_most_for_sigmoid_then_tanh_then_relu(seed):
  r = {act: _first_over_last(act, seed) for act in ("sigmoid", "tanh", "relu")}
  assert r["sigmoid"] < r["tanh"] < r["relu"], r
  assert r["sigmoid"] < 1e-4  # vanished: four orders of magnitude and more


def test_diagnostics_on_or_off_leave_parameters_identical(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  kw = dict(num_epochs=2, model="mlp", mlp_depth=3, mlp_width=32)
  off = train.train_and_evaluate(small_config(data_dir, **kw), tmp_path / "off")
  on = train.train_and_evaluate(
    small_config(data_dir, diagnostics=True, diagnostics_every_steps=2, **kw), tmp_path / "on"
  )
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(on.params), jax.device_get(off.params))
  records = [r for r in writers.read_metrics(tmp_path / "on") if r["split"] == "diagnostics"]
  # Every second step, and the run's last step (10 steps: 0..9).
  assert [r["step"] for r in records] == [0, 2, 4, 6, 8, 9]
  layers = [models.layer_name(i) for i in range(3)]
  assert list(records[0]["dead"]) == layers
  assert list(records[0]["backprop_norm"]) == layers
  assert list(records[0]["grad_norm"]) == layers + [models.layer_name(3)]
  for key in diagnostics.RECORD_KEYS:
    assert all(np.isfinite(v) for v in records[-1][key].values()), key
  assert not any(r["split"] == "diagnostics" for r in writers.read_metrics(tmp_path / "off"))


def test_diagnostics_step_reports_learnable_activation_preactivations():
  cfg = small_config(activation="prelu")
  model = build.make_model(cfg)
  state = build.create_train_state(cfg, model, jax.random.key(0))
  batch = {"image": jnp.ones((8, 32, 32, 3)), "label": jnp.zeros(8, jnp.int32)}
  _, _, diag = jax.jit(steps.train_step_with_diagnostics, static_argnums=(2, 3))(
    state, batch, model.activation, 0.01
  )
  assert set(diag["preact_std"]) == {"conv2d", "conv2d_1", "conv2d_2", "dense"}
  assert "dead" not in diag  # f' depends on the slope parameters, not z alone
  assert set(diag["backprop_norm"]) == set(diag["preact_std"])


def _state_and_batch(model, n=8):
  state = build.create_train_state(small_config(), model, jax.random.key(0))
  kx, ky = jax.random.split(jax.random.key(1))
  batch = {
    "image": jax.random.normal(kx, (n, 32, 32, 3)),
    "label": jax.random.randint(ky, (n,), 0, 10),
  }
  return state, batch


def _diagnose(state, batch, activation, eps=0.01):
  step = jax.jit(steps.train_step_with_diagnostics, static_argnums=(2, 3))
  return step(state, batch, activation, eps)


class Block(nn.Module):
  """A submodule with its own activation sites."""

  @nn.compact
  def __call__(self, x):
    act = models.ActivationSites(self, "tanh", train=False)
    x = act(nn.Dense(16, name="dense")(x), "dense")
    return act(nn.Dense(16, name="dense_1")(x), "dense_1")


class Nested(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Block(name="block")(x.reshape((x.shape[0], -1)))
    x = Block(name="block_1")(x)
    return nn.Dense(10, name="head")(x)


class Silent(nn.Module):
  """A model that records nothing."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    return nn.Dense(10, name="head")(
      jnp.tanh(nn.Dense(16, name="hidden")(x.reshape((x.shape[0], -1))))
    )


def test_layers_nested_in_submodules_are_found_by_path():
  state, batch = _state_and_batch(Nested())
  _, _, diag = _diagnose(state, batch, "tanh")
  sites = {"block/dense", "block/dense_1", "block_1/dense", "block_1/dense_1"}
  for key in ("dead", "near_dead", "saturated", "act_mean", "preact_std", "backprop_norm"):
    assert set(diag[key]) == sites, key
  assert set(diag["grad_norm"]) == sites | {"head"}
  assert set(diag["update_ratio"]) == sites | {"head"}


class Mixed(nn.Module):
  """sigmoid at one site, the model's own activation (relu) at the other."""

  activation: str = "relu"

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape((x.shape[0], -1))
    # Large pre-activations, so that sigmoid's tails are reached.
    wide = nn.initializers.normal(1.0)
    z = nn.Dense(32, kernel_init=wide, name="gate")(x)
    x = models.ActivationSites(self, "sigmoid", train)(z, "gate")
    x = models.ActivationSites(self, self.activation, train)(
      nn.Dense(32, name="hidden")(x), "hidden"
    )
    return nn.Dense(10, name="head")(x)


def test_each_site_of_a_mixed_model_is_measured_with_its_own_activation():
  model = Mixed()
  state, batch = _state_and_batch(model, n=16)
  _, _, diag = _diagnose(state, batch, model.activation)
  _, sown = model.apply({"params": state.params}, batch["image"], mutable=[diagnostics.COLLECTION])
  z = sown[diagnostics.COLLECTION]["gate:preactivation"][0]
  sigmoid, relu = _stats("sigmoid", z), _stats("relu", z)
  assert sigmoid["saturated"] > 0.1 and relu["saturated"] == 0.0  # the figures differ
  for key in ("dead", "near_dead", "saturated", "act_mean", "act_std"):
    assert diag[key]["gate"] == pytest.approx(sigmoid[key], abs=1e-6), key
  # The other site applies the model's relu and is measured as relu.
  h = sown[diagnostics.COLLECTION]["hidden:preactivation"][0]
  assert diag["act_mean"]["hidden"] == pytest.approx(_stats("relu", h)["act_mean"], rel=1e-6)
  # A site that records no activation falls back to the model's.
  preacts = {"gate:preactivation": (z,)}
  assert diagnostics.activation_stats(preacts, "sigmoid", 0.01)["saturated"]["gate"] == (
    pytest.approx(sigmoid["saturated"])
  )


def test_a_model_that_records_nothing_gets_a_warning_and_kernel_norms():
  state, batch = _state_and_batch(Silent())
  with pytest.warns(UserWarning, match="recorded no pre-activations"):
    _, _, diag = _diagnose(state, batch, "tanh")
  assert set(diag) == {"grad_norm", "update_ratio"}
  assert set(diag["grad_norm"]) == {"hidden", "head"}


def test_backprop_norm_is_the_gradient_with_respect_to_each_pre_activation():
  # With the identity, dL/dz of a hidden layer is dL/dlogits times the
  # transposed kernels after it.
  model = models.MLP(activation="identity", depth=2, width=16)
  state, batch = _state_and_batch(model)
  _, _, diag = _diagnose(state, batch, "identity")
  p = state.params
  logits = model.apply({"params": p}, batch["image"])
  g = jax.grad(
    lambda lg: optax.softmax_cross_entropy_with_integer_labels(lg, batch["label"]).mean()
  )(logits)
  dz1 = g @ p["layer_02"]["kernel"].T
  dz0 = dz1 @ p["layer_01"]["kernel"].T
  np.testing.assert_allclose(diag["backprop_norm"]["layer_01"], jnp.linalg.norm(dz1), rtol=1e-5)
  np.testing.assert_allclose(diag["backprop_norm"]["layer_00"], jnp.linalg.norm(dz0), rtol=1e-5)


def test_recording_adds_nothing_to_the_default_step(monkeypatch):
  model = models.LeNet5()
  state, batch = _state_and_batch(model)
  # A fresh function each time, so no trace is reused from a cache.
  recorded = str(jax.make_jaxpr(lambda s, b: steps.train_step(s, b))(state, batch))
  monkeypatch.setattr(
    diagnostics, "record_preactivation", lambda module, layer, z, activation=None: z
  )
  bare = str(jax.make_jaxpr(lambda s, b: steps.train_step(s, b))(state, batch))
  assert recorded == bare


@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_lenet5_step_gives_the_same_parameters_with_diagnostics(activation):
  model = models.LeNet5(activation=activation)
  state, batch = _state_and_batch(model)
  plain, _ = jax.jit(steps.train_step)(state, batch)
  diagnosed, _, diag = _diagnose(state, batch, activation)
  jax.tree.map(np.testing.assert_array_equal, plain.params, diagnosed.params)
  assert set(diag["backprop_norm"]) == {"conv2d", "conv2d_1", "conv2d_2", "dense"}


@pytest.mark.parametrize("magnitude", [1e-20, 1e-30, 1.0, 1e20, 1e30])
def test_norms_neither_underflow_nor_overflow(magnitude):
  # Squares of 1e-20 are below float32's smallest subnormal and squares of
  # 1e20 above its largest value; the norms themselves are not.
  x = np.random.default_rng(0).normal(size=(64, 33)).astype(np.float32) * np.float32(magnitude)
  exact = np.sqrt(np.sum(np.square(x.astype(np.float64))))
  got = diagnostics.l2_norm(jnp.asarray(x))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), exact, rtol=1e-6)
  grads = {"layer_00": {"kernel": jnp.asarray(x)}}
  np.testing.assert_allclose(float(diagnostics.kernel_norms(grads)["layer_00"]), exact, rtol=1e-6)


def test_norms_of_zeros_and_infinities():
  assert float(diagnostics.l2_norm(jnp.zeros((3, 4)))) == 0.0
  assert float(diagnostics.l2_norm(jnp.array([1.0, -jnp.inf]))) == np.inf
  assert np.isnan(float(diagnostics.l2_norm(jnp.array([1.0, jnp.nan]))))
