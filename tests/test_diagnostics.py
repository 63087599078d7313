"""Diagnostics: exact on hand-built inputs, the tutorial's claims, zero cost to results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_train import small_config

from actlab import activations, diagnostics, models, steps, train, writers


def test_dead_and_saturated_fractions_are_exact_on_hand_built_inputs():
  relu = activations.get("relu")
  # 4 examples x 3 units: unit 0 never positive, unit 1 once, unit 2 exactly 0.
  z = jnp.array([[-1.0, -2.0, 0.0], [-3.0, 5.0, 0.0], [-0.5, -1.0, 0.0], [-2.0, -0.1, 0.0]])
  d = diagnostics.elementwise_derivative(relu, z)
  np.testing.assert_array_equal(d, (z > 0).astype(jnp.float32))
  assert float(diagnostics.dead_fraction(d)) == pytest.approx(2 / 3)
  # Conv layout: a unit (channel) is alive if any example or position is.
  conv = jnp.zeros((2, 3, 3, 4)).at[1, 2, 0, 3].set(1.0)
  assert float(diagnostics.dead_fraction(conv)) == 0.75
  sigmoid = activations.get("sigmoid")
  zs = jnp.array([0.0, 1.0, 5.0, 6.0, -7.0, 10.0])  # sigmoid' < 0.01 iff |z| > 4.59
  ds = diagnostics.elementwise_derivative(sigmoid, zs)
  assert float(diagnostics.saturated_fraction(ds, 0.01)) == pytest.approx(4 / 6)
  stats = diagnostics.activation_stats({"layer_00:preactivation": (z,)}, relu, threshold=0.5)
  assert float(stats["dead"]["layer_00"]) == pytest.approx(2 / 3)
  assert float(stats["saturated"]["layer_00"]) == pytest.approx(11 / 12)
  assert float(stats["act_mean"]["layer_00"]) == pytest.approx(5 / 12)


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
  assert [r["step"] for r in records] == [0, 2, 4, 6, 8]
  layers = [models.layer_name(i) for i in range(3)]
  assert list(records[0]["dead"]) == layers
  assert list(records[0]["grad_norm"]) == layers + [models.layer_name(3)]
  for key in ("grad_norm", "update_ratio", "act_mean", "act_std", "saturated", "dead"):
    assert all(np.isfinite(v) for v in records[-1][key].values()), key
  assert not any(r["split"] == "diagnostics" for r in writers.read_metrics(tmp_path / "off"))


def test_diagnostics_step_reports_learnable_activation_preactivations():
  cfg = small_config(activation="prelu")
  model = steps.make_model(cfg)
  state = steps.create_train_state(cfg, model, jax.random.key(0))
  batch = {"image": jnp.ones((8, 32, 32, 3)), "label": jnp.zeros(8, jnp.int32)}
  _, _, diag = jax.jit(steps.train_step_with_diagnostics, static_argnums=(2, 3))(
    state, batch, model.activation, 0.01
  )
  assert set(diag["preact_std"]) == {"conv2d", "conv2d_1", "conv2d_2", "dense"}
  assert "dead" not in diag  # f' depends on the slope parameters, not z alone
