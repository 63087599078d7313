"""LeNet5 and MLP: the tutorial's architecture, parameter counts, any activation."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from actlab import activations, models

TUTORIAL_TABLE = [
    ("conv2d", (None, 32, 32, 6), 456),
    ("max_pooling2d", (None, 16, 16, 6), 0),
    ("conv2d_1", (None, 16, 16, 16), 2416),
    ("max_pooling2d_1", (None, 8, 8, 16), 0),
    ("conv2d_2", (None, 8, 8, 120), 48120),
    ("flatten", (None, 7680), 0),
    ("dense", (None, 84), 645204),
    ("dense_1", (None, 10), 850),
]


def test_lenet5_matches_the_tutorials_keras_summary():
  model = models.LeNet5()
  assert models.layer_table(model, (32, 32, 3)) == TUTORIAL_TABLE
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  assert models.count_params(params) == 697_046
  text = models.summary(model, (32, 32, 3))
  assert "Total params: 697,046" in text and "645,204" in text


def test_logits_shape_and_dtype():
  model = models.LeNet5()
  x = jnp.ones((4, 32, 32, 3))
  params = model.init(jax.random.key(0), x)
  assert model.apply(params, x).shape == (4, 10)
  bf16 = models.LeNet5(dtype=jnp.bfloat16)
  assert bf16.apply(params, x).dtype == jnp.float32  # logits in float32


@pytest.mark.parametrize("name", activations.names())
def test_activation_is_a_field_and_is_used(name):
  # Scaled so that some pre-activations pass 6, where relu6 parts from relu.
  x = 4 * jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  base = models.LeNet5()
  params = base.init(jax.random.key(0), x)
  out = models.LeNet5(activation=activations.get(name)).apply(params, x)
  if name != "exponential":  # exp through four layers overflows float32
    assert np.isfinite(np.asarray(out)).all()
  if name != "relu":
    assert not np.allclose(out, base.apply(params, x))


def test_identity_lenet5_is_positively_homogeneous_at_init():
  # Biases start at zero; with the identity every layer is linear and
  model = models.LeNet5(activation=activations.get("identity"))
  x = jax.random.normal(jax.random.key(2), (1, 32, 32, 3))
  params = model.init(jax.random.key(0), x)
  y0 = model.apply(params, jnp.zeros_like(x))
  y1 = model.apply(params, x)
  y2 = model.apply(params, 2 * x)
  # max-pool commutes with positive scaling, so f(2x) = 2 f(x).
  np.testing.assert_allclose(y2 - y0, 2 * (y1 - y0), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------
# Any activation in any model: strings, functions, Module classes, instances
# ----------------------------------------------------------------------------


class Scaled(nn.Module):
  """A user's activation module with a plain __call__(x): tanh(s * x), s learned."""

  @nn.compact
  def __call__(self, x):
    s = self.param("scale", nn.initializers.constant(0.5), ())
    return jnp.tanh(s * x)


class DropInTraining(nn.Module):
  """A user's module that declares `deterministic`: zero in training."""

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    return x if deterministic else jnp.zeros_like(x)


def _site_params(params, prefix):
  return {k: v for k, v in params.items() if k == prefix or k.startswith(prefix + "_")}


def _small_mlp(activation):
  return models.MLP(activation=activation, depth=3, width=32)


# (name, activation, site prefix or None, parameters per site, their value at init)
KINDS = [
  ("spec string", "relu", None, 0, None),
  ("learnable spec string", "prelu(mode='shared')", "prelu", 1, 0.25),
  ("plain function", jax.nn.gelu, None, 0, None),
  ("lambda", lambda x: x * jax.nn.sigmoid(x), None, 0, None),
  ("flax class", nn.PReLU, "prelu", 1, 0.01),
  ("flax instance", nn.PReLU(negative_slope_init=0.2), "prelu", 1, 0.2),
  ("user class", Scaled, "scaled", 1, 0.5),
  ("user instance", Scaled(), "scaled", 1, 0.5),
  ("user factory", functools.partial(Scaled), "scaled", 1, 0.5),
]
MODELS = {
  "lenet5": (models.LeNet5, (32, 32, 3), ["conv2d", "conv2d_1", "conv2d_2", "dense"]),
  "mlp": (_small_mlp, (8, 8, 3), [models.layer_name(i) for i in range(3)]),
}


# LeNet5 takes a few seconds per case: the kinds that differ in how they are
# applied (the MLP runs them all).
LENET5_KINDS = ("spec string", "plain function", "flax class", "flax instance", "user class",
                "user instance")
CASES = [
  pytest.param(m, *k, id=f"{m}-{k[0]}")
  for m in MODELS
  for k in KINDS
  if m == "mlp" or k[0] in LENET5_KINDS
]


@pytest.mark.parametrize("model_name, kind, activation, prefix, per_site, init", CASES)
def test_any_activation_gets_its_own_parameters_per_site_and_trains(
  model_name, kind, activation, prefix, per_site, init
):
  make, shape, layers = MODELS[model_name]
  kx, ky = jax.random.split(jax.random.key(3))
  x = jax.random.normal(kx, (8, *shape))
  y = jax.random.randint(ky, (8,), 0, 10)
  model = make(activation)
  params = model.init(jax.random.key(0), x[:1])["params"]
  plain = make(activations.get("relu")).init(jax.random.key(0), x[:1])["params"]
  # Layers are the plain model's, plus one parameter set per activation site.
  sites = _site_params(params, prefix) if prefix else {}
  assert set(params) == set(plain) | set(sites)
  assert len(sites) == (len(layers) if prefix else 0)
  if prefix:
    assert sorted(sites) == sorted([prefix] + [f"{prefix}_{i}" for i in range(1, len(layers))])
  for site in sites.values():
    leaves = jax.tree.leaves(site)
    assert sum(np.size(p) for p in leaves) == per_site
    np.testing.assert_allclose(leaves[0], init)
  assert models.count_params(params) == models.count_params(plain) + len(sites) * per_site

  tx = optax.adam(1e-3)

  def loss_fn(p):
    logits = model.apply({"params": p}, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(p, opt):
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt, loss, grads

  opt, losses, new = tx.init(params), [], params
  for _ in range(20):
    new, opt, loss, grads = step(new, opt)
    losses.append(float(loss))
  assert np.isfinite(losses).all()
  assert losses[-1] < losses[0], losses
  # Every site's parameters get a gradient of their own.
  site_grads = [float(jax.tree.leaves(grads[name])[0]) for name in sorted(sites)]
  assert all(g != 0 for g in site_grads), site_grads
  assert len(set(site_grads)) == len(site_grads), site_grads


@pytest.mark.parametrize("spec, count", [("relu", 697_046), ("maxout(k=2)", 1_393_242)])
def test_spec_strings_give_the_registry_models_bit_for_bit(spec, count):
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  by_string = models.LeNet5(activation=spec)
  by_object = models.LeNet5(activation=activations.get(spec))
  p1 = by_string.init(jax.random.key(0), x[:1])["params"]
  p2 = by_object.init(jax.random.key(0), x[:1])["params"]
  assert models.count_params(p1) == count
  jax.tree.map(np.testing.assert_array_equal, p1, p2)
  if spec == "relu":
    np.testing.assert_array_equal(
      by_string.apply({"params": p1}, x), by_object.apply({"params": p2}, x)
    )
  assert models.layer_table(by_string, (32, 32, 3)) == models.layer_table(by_object, (32, 32, 3))


def test_deterministic_is_passed_only_to_modules_that_declare_it():
  x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
  model = _small_mlp(DropInTraining)
  params = model.init(jax.random.key(0), x)["params"]
  evaluated = model.apply({"params": params}, x)
  trained = model.apply({"params": params}, x, train=True)
  # In training every hidden layer outputs zeros: only the output bias is left.
  np.testing.assert_array_equal(trained, jnp.broadcast_to(params["layer_03"]["bias"], (4, 10)))
  assert not np.allclose(evaluated, trained)
  # nn.PReLU's __call__(inputs) takes no `deterministic`, in training too.
  _small_mlp(nn.PReLU).init_with_output(jax.random.key(0), x, train=True)


def test_an_instance_is_cloned_per_site_not_shared():
  instance = nn.PReLU(negative_slope_init=0.2)
  model = _small_mlp(instance)
  params = model.init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))["params"]
  assert sorted(_site_params(params, "prelu")) == ["prelu", "prelu_1", "prelu_2"]
  assert instance.parent is None or instance.name != "prelu"  # the user's object is untouched


def test_an_instance_named_like_the_field_gets_numbered_sites():
  class Activation(nn.Module):
    @nn.compact
    def __call__(self, x):
      return x * self.param("s", nn.initializers.ones, ())

  params = _small_mlp(Activation()).init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))["params"]
  assert sorted(_site_params(params, "activation")) == [
    "activation_0", "activation_1", "activation_2"
  ]


def test_a_bad_activation_is_refused_with_a_clear_error():
  with pytest.raises(TypeError, match="spec string such as 'relu'"):
    models.LeNet5(activation=3).init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))
  with pytest.raises(ValueError, match="Unknown activation 'rleu'"):
    models.MLP(activation="rleu").init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))
