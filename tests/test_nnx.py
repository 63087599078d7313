"""The Flax NNX models and learnable activations: the linen models' function
and parameter count, and training with nnx.Optimizer."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from actlab import activations, build, diagnostics, models, steps
from actlab import nnx as anx


def test_lenet5_has_the_tutorial_parameter_count():
  count = lambda act: anx.count_params(
    nnx.eval_shape(  # noqa: E731
      lambda: anx.LeNet5(act, rngs=nnx.Rngs(0))
    )
  )
  assert count("relu") == 697_046
  assert count("prelu") == 697_046 + 6 + 16 + 120 + 84  # one slope per channel
  assert count("maxout") == 1_393_242  # as models.LeNet5 with k = 2


def _copy_linen_params(model, params, sites):
  """Loads a linen model's parameters into the NNX model of the same layout."""
  for name, leaves in params.items():
    if name in sites:
      getattr(model, f"act_{sites[name]}").alpha[...] = leaves["alpha"]
      continue
    layer = getattr(model, name)
    layer.kernel[...], layer.bias[...] = leaves["kernel"], leaves["bias"]


def test_mlp_with_prelu_computes_what_the_linen_mlp_computes():
  x = jax.random.normal(jax.random.key(1), (4, 12))
  linen = models.MLP(activation="prelu", depth=2, width=8)
  params = linen.init(jax.random.key(0), x)["params"]
  params = jax.tree.map(lambda p: p + 0.1, params)  # slopes away from their init
  model = anx.MLP("prelu", in_features=12, depth=2, width=8, rngs=nnx.Rngs(0))
  _copy_linen_params(model, params, {"prelu": "layer_00", "prelu_1": "layer_01"})
  np.testing.assert_allclose(model(x), linen.apply({"params": params}, x), rtol=1e-6)


def test_mlp_with_prelu_trains_with_nnx_optimizer():
  x = jax.random.normal(jax.random.key(1), (32, 12))
  y = jnp.arange(32) % 10
  model = anx.MLP("prelu(mode='shared')", in_features=12, depth=2, width=16, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  losses = [float(anx.jit_train_step(model, optimizer, x, y)) for _ in range(15)]
  assert losses[-1] < 0.7 * losses[0], losses
  # The slope is a parameter like the others: it moved from its 0.25.
  assert float(model.act_layer_00.alpha[...]) != 0.25


@pytest.mark.parametrize(
  "activation",
  [
    "swish_beta",
    activations.PReLU,
    nn.PReLU,
    anx.SwishBeta,
    jax.nn.gelu,
    "elu(alpha=0.5)",
    lambda features, rngs: anx.PReLU(features, init_slope=0.1, rngs=rngs),
  ],
)
def test_any_activation_value_makes_sites(activation):
  if activation is nn.PReLU:  # flax's own linen class: NNX needs its NNX form
    with pytest.raises(ValueError, match="flax.nnx.bridge.ToNNX"):
      anx.MLP(activation, in_features=3, depth=1, width=4, rngs=nnx.Rngs(0))
    return
  model = anx.MLP(activation, in_features=3, depth=1, width=4, rngs=nnx.Rngs(0))
  assert model(jnp.ones((2, 3))).shape == (2, 10)


def test_rrelu_draws_slopes_in_training_only():
  model = anx.MLP("rrelu", in_features=6, depth=1, width=64, rngs=nnx.Rngs(0, rrelu=1))
  x = -jnp.ones((2, 6))
  assert jnp.array_equal(model(x), model(x))
  assert not jnp.array_equal(model(x, train=True), model(x, train=True))


def test_lenet5_refuses_a_layout_it_was_not_made_for():
  model = nnx.eval_shape(lambda: anx.LeNet5(rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match="NCHW"):
    model(jnp.zeros((1, 3, 32, 32)))
  with pytest.raises(ValueError, match="made for images of shape"):
    model(jnp.zeros((1, 28, 28, 3)))


def _linen_and_nnx_mlp(activation, sites, depth=3, width=16, n=32, d=12):
  """A linen MLP and the NNX MLP holding the same parameters, and a batch."""
  kx, ky = jax.random.split(jax.random.key(1))
  x = 2.0 * jax.random.normal(kx, (n, d))
  y = jax.random.randint(ky, (n,), 0, 10)
  linen = models.MLP(activation=activation, depth=depth, width=width)
  params = linen.init(jax.random.key(0), x)["params"]
  model = anx.MLP(activation, in_features=d, depth=depth, width=width, rngs=nnx.Rngs(0))
  _copy_linen_params(model, params, sites)
  state = build.create_train_state(
    None, linen, jax.random.key(0), tx=optax.sgd(0.5), input_shape=(d,)
  )
  return state.replace(params=params), model, x, y


@pytest.mark.parametrize(
  "activation, sites",
  [
    ("sigmoid", {}),
    ("prelu", {"prelu": "layer_00", "prelu_1": "layer_01", "prelu_2": "layer_02"}),
  ],
)
def test_diagnostics_equal_the_linen_models_for_the_same_parameters(activation, sites):
  state, model, x, y = _linen_and_nnx_mlp(activation, sites)
  _, _, expected = jax.jit(steps.train_step_with_diagnostics, static_argnums=(2, 3))(
    state, {"image": x, "label": y}, activation, 0.01
  )
  optimizer = nnx.Optimizer(model, optax.sgd(0.5), wrt=nnx.Param)
  _, record = anx.jit_train_step_with_diagnostics(model, optimizer, x, y, saturation_threshold=0.01)
  assert set(record) == set(expected)
  if activation == "sigmoid":
    assert set(record) == set(diagnostics.RECORD_KEYS)
  for key in expected:
    assert set(record[key]) == set(expected[key]), key
    for layer in expected[key]:
      np.testing.assert_allclose(
        record[key][layer], expected[key][layer], rtol=2e-5, atol=1e-7, err_msg=f"{key}/{layer}"
      )


def test_diagnosed_step_updates_the_parameters_as_the_plain_step():
  x = jax.random.normal(jax.random.key(1), (8, 32, 32, 3))
  y = jnp.arange(8) % 10
  plain, diagnosed = (anx.LeNet5("relu", rngs=nnx.Rngs(0)) for _ in range(2))
  opt_plain = nnx.Optimizer(plain, optax.adam(1e-3), wrt=nnx.Param)
  opt_diag = nnx.Optimizer(diagnosed, optax.adam(1e-3), wrt=nnx.Param)
  for _ in range(2):
    loss = anx.jit_train_step(plain, opt_plain, x, y)
    loss_d, record = anx.jit_train_step_with_diagnostics(diagnosed, opt_diag, x, y)
  assert float(loss) == float(loss_d)
  jax.tree.map(
    np.testing.assert_array_equal, nnx.state(plain, nnx.Param), nnx.state(diagnosed, nnx.Param)
  )
  assert list(record["dead"]) == ["conv2d", "conv2d_1", "conv2d_2", "dense"]
  assert list(record["grad_norm"]) == ["conv2d", "conv2d_1", "conv2d_2", "dense", "dense_1"]


def test_each_nnx_site_is_measured_with_its_own_activation():
  def factory(features, rngs):
    return jax.nn.sigmoid if features == 6 else jax.nn.relu

  model = anx.LeNet5(factory, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param)
  x = 5.0 * jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  _, record = anx.jit_train_step_with_diagnostics(model, optimizer, x, jnp.zeros(4, jnp.int32))
  # relu never saturates; sigmoid on inputs of scale 5 does.
  assert float(record["saturated"]["conv2d"]) > 0.05
  assert all(float(record["saturated"][k]) == 0.0 for k in ("conv2d_1", "conv2d_2", "dense"))
