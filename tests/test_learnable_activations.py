"""Learnable and stochastic activations inside LeNet5: parameters, training, RNG."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from actlab import activations, models

BASE = 697_046
SHAPE = (32, 32, 3)


def _batch(seed=0, n=4):
  kx, ky = jax.random.split(jax.random.key(seed))
  return jax.random.normal(kx, (n, *SHAPE)), jax.random.randint(ky, (n,), 0, 10)


def _train(model, params, steps=3, lr=1e-2, **apply_kw):
  tx = optax.adam(lr)
  opt = tx.init(params)
  x, y = _batch()

  @jax.jit
  def step(params, opt, key):
    def loss_fn(p):
      rngs = {"rrelu": key} if apply_kw.get("train") else None
      logits = model.apply({"params": p}, x, rngs=rngs, **apply_kw)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt, loss, grads

  losses = []
  for i in range(steps):
    params, opt, loss, grads = step(params, opt, jax.random.key(100 + i))
    losses.append(float(loss))
  return params, losses, grads


def _init(spec, shapes_only=False):
  model = models.LeNet5(activation=activations.get(spec))
  init = lambda: model.init(jax.random.key(0), jnp.zeros((1, *SHAPE)))  # noqa: E731
  # Counting needs only shapes: no compilation.
  return model, (jax.eval_shape(init) if shapes_only else init())["params"]


@pytest.mark.parametrize(
    "spec, extra, rows",
    [
        ("prelu", 6 + 16 + 120 + 84, ["prelu", "prelu_1", "prelu_2", "prelu_3"]),
        ("prelu(mode='shared')", 4, ["prelu", "prelu_1", "prelu_2", "prelu_3"]),
        ("prelu(mode='element')", 32 * 32 * 6 + 16 * 16 * 16 + 8 * 8 * 120 + 84,
         ["prelu", "prelu_1", "prelu_2", "prelu_3"]),
        ("swish_beta", 4,
         ["swish_beta", "swish_beta_1", "swish_beta_2", "swish_beta_3"]),
        ("swish_beta(mode='channel')", 6 + 16 + 120 + 84, ["swish_beta"]),
        ("rrelu", 0, ["rrelu", "rrelu_1", "rrelu_2", "rrelu_3"]),
    ],
)
def test_parameters_show_up_in_the_summary(spec, extra, rows):
  model, params = _init(spec, shapes_only=True)
  assert models.count_params(params) == BASE + extra
  table = dict((name, n) for name, _, n in models.layer_table(model, SHAPE))
  for row in rows:
    assert row in table
  # Each site has its own parameters, and the table accounts for all of them.
  assert sum(table.values()) == BASE + extra
  assert f"Total params: {BASE + extra:,}" in models.summary(model, SHAPE)
  if extra:
    assert table[rows[0]] > 0


def test_maxout_parameter_count_is_the_documented_one():
  # k = 2 doubles every hidden layer's units: 2 * 696,196 + 850.
  model, params = _init("maxout(k=2)", shapes_only=True)
  assert models.count_params(params) == 1_393_242
  table = {name: (shape, n) for name, shape, n in models.layer_table(model, SHAPE)}
  assert table["conv2d"] == ((None, 32, 32, 12), 912)
  assert table["maxout"] == ((None, 32, 32, 6), 0)
  assert table["dense"] == ((None, 168), 7680 * 168 + 168)
  assert table["maxout_3"] == ((None, 84), 0)
  assert models.count_params(_init("maxout(k=3)", True)[1]) == 3 * 696_196 + 850
  # glu halves its input the same way.
  assert models.count_params(_init("glu", True)[1]) == 1_393_242


def test_default_lenet5_is_unchanged():
  model, params = _init("relu", shapes_only=True)
  assert models.count_params(params) == BASE
  assert [r[0] for r in models.layer_table(model, SHAPE)] == [
      "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2",
      "flatten", "dense", "dense_1",
  ]


@pytest.mark.parametrize("spec, leaf", [("prelu", "alpha"), ("swish_beta", "beta")])
def test_learnable_parameters_move_during_training(spec, leaf):
  model, params = _init(spec)
  new, losses, grads = _train(model, params)
  assert np.isfinite(losses).all()
  for site in [k for k in params if k.startswith(spec)]:
    assert np.abs(np.asarray(grads[site][leaf])).max() > 0, site
    moved = np.abs(np.asarray(new[site][leaf]) - np.asarray(params[site][leaf]))
    assert moved.max() > 1e-4, site


@pytest.mark.parametrize("spec", ["maxout(k=2)", "rrelu"])
def test_other_activations_train_in_lenet5(spec):
  model, params = _init(spec)
  new, losses, _ = _train(model, params, train=spec == "rrelu")
  assert np.isfinite(losses).all()
  assert not np.allclose(new["dense"]["kernel"], params["dense"]["kernel"])


def test_rrelu_is_random_in_training_and_the_mean_in_evaluation():
  model, params = _init("rrelu")
  x, _ = _batch(1)
  v = {"params": params}
  a = model.apply(v, x, train=True, rngs={"rrelu": jax.random.key(1)})
  b = model.apply(v, x, train=True, rngs={"rrelu": jax.random.key(2)})
  again = model.apply(v, x, train=True, rngs={"rrelu": jax.random.key(1)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(a, again)
  mean = 0.5 * (1 / 8 + 1 / 3)
  leaky = activations.get(f"leaky_relu(negative_slope={mean})")
  leaky = models.LeNet5(activation=leaky)
  np.testing.assert_allclose(model.apply(v, x), leaky.apply(v, x), rtol=1e-5, atol=1e-6)
  with pytest.raises(Exception, match="rrelu"):
    model.apply(v, x, train=True)


def test_rrelu_slopes_lie_in_their_interval():
  m = activations.RReLU(lower=0.1, upper=0.3)
  x = -jnp.ones((10_000,))
  y = m.apply({}, x, deterministic=False, rngs={"rrelu": jax.random.key(0)})
  slopes = -np.asarray(y)
  assert slopes.min() >= 0.1 and slopes.max() <= 0.3
  assert abs(slopes.mean() - 0.2) < 0.005
  np.testing.assert_allclose(m.apply({}, x), -0.2 * np.ones(10_000), rtol=1e-6)


def test_modules_compute_their_formulas():
  x = jnp.linspace(-3, 3, 13).reshape(1, 13)
  p = activations.PReLU(mode="shared", init_slope=0.1)
  np.testing.assert_allclose(p.apply(p.init(jax.random.key(0), x), x),
                             jnp.where(x >= 0, x, 0.1 * x), rtol=1e-6)
  s = activations.SwishBeta(init_beta=2.0)
  np.testing.assert_allclose(s.apply(s.init(jax.random.key(0), x), x),
                             x * jax.nn.sigmoid(2 * x), rtol=1e-6)
  m = activations.Maxout(k=3)
  z = jnp.arange(12.0).reshape(1, 12)
  np.testing.assert_array_equal(m.apply({}, z), [[2.0, 5.0, 8.0, 11.0]])
  with pytest.raises(ValueError, match="divisible by 3"):
    m.apply({}, jnp.ones((1, 4)))
