"""The blocked layers compute what nn.Conv, nn.max_pool and nn.Dense compute."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import set_fields

from actlab import activations, diagnostics, layers, models, train, writers
from experiments.configs import lenet5_cifar10

F32_TOL = 5e-5  # float32 rounding of differently ordered sums, relative to the largest value


def assert_close(actual, expected, tol=F32_TOL):
  """|actual - expected| <= tol * max|expected|, leaf by leaf."""

  def check(a, e):
    a, e = np.asarray(a, np.float32), np.asarray(e, np.float32)
    assert a.shape == e.shape
    np.testing.assert_allclose(a, e, rtol=0, atol=tol * max(np.abs(e).max(), 1e-30))

  jax.tree.map(check, actual, expected)


class PlainStage(nn.Module):
  """nn.Conv -> activation -> 2x2 max-pool (or no pool)."""

  features: int
  kernel_size: int
  activation: object
  pool: bool = True
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = (self.kernel_size, self.kernel_size)
    z = self.activation(nn.Conv(self.features, k, padding="SAME", dtype=self.dtype, name="conv")(x))
    return nn.max_pool(z, (2, 2), (2, 2)) if self.pool else z


class BlockedStage(PlainStage):
  """The same through space_to_depth -> BlockedConv -> activation -> group_max."""

  @nn.compact
  def __call__(self, x):
    conv = layers.BlockedConv(self.features, self.kernel_size, dtype=self.dtype, name="conv")
    z = self.activation(conv(layers.space_to_depth(x)))
    return layers.group_max(z) if self.pool else layers.blocked_to_spatial(z)


def _stage_outputs_and_grads(module, params, x):
  ct = jax.random.normal(jax.random.key(7), jax.eval_shape(module.apply, params, x).shape)
  out, vjp = jax.vjp(module.apply, params, x)
  return out, vjp(ct.astype(out.dtype))


@pytest.mark.parametrize(
  "act, kernel_size, pool",
  [
    ("relu", 5, True),
    ("tanh", 5, True),
    ("sigmoid", 5, True),
    ("elu", 5, True),
    ("leaky_relu", 3, True),
    ("relu", 5, False),
    ("glu", 1, True),
  ],
)
def test_blocked_conv_stage_equals_conv_and_max_pool(act, kernel_size, pool):
  # Odd batch, channels and features; non-square input.
  x = 3 * jax.random.normal(jax.random.key(0), (3, 6, 10, 5))
  f = activations.get(act)
  plain = PlainStage(14, kernel_size, f, pool)
  params = plain.init(jax.random.key(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero biases
  blocked = BlockedStage(14, kernel_size, f, pool)
  out, grads = _stage_outputs_and_grads(blocked, params, x)
  out_ref, grads_ref = _stage_outputs_and_grads(plain, params, x)
  assert_close(out, out_ref)
  assert_close(grads, grads_ref)


def test_blocked_conv_in_bfloat16():
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
  plain = PlainStage(6, 5, jnp.tanh, dtype=jnp.bfloat16)
  params = plain.init(jax.random.key(1), x)
  blocked = BlockedStage(6, 5, jnp.tanh, dtype=jnp.bfloat16)
  out, grads = _stage_outputs_and_grads(blocked, params, x)
  out_ref, grads_ref = _stage_outputs_and_grads(plain, params, x)
  assert out.dtype == out_ref.dtype == jnp.bfloat16
  assert_close(out, out_ref, tol=2e-2)
  # Rounding to bfloat16 can break a near-tie differently: compare in norm.
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
    g, r = np.asarray(g, np.float32), np.asarray(r, np.float32)
    assert np.linalg.norm(g - r) <= 3e-2 * np.linalg.norm(r)


def test_group_max_breaks_ties_as_max_pool():
  # Integer inputs: many exact ties, incl. whole windows of equal values.
  x = jax.random.randint(jax.random.key(0), (2, 8, 6, 3), -2, 3).astype(jnp.float32)
  ct = jax.random.normal(jax.random.key(1), (2, 4, 3, 3))
  pool = lambda x: nn.max_pool(x, (2, 2), (2, 2))  # noqa: E731
  blocked = lambda x: layers.group_max(layers.space_to_depth(x).reshape(2, 4, 3, 4, 3))  # noqa: E731
  ref, vjp_ref = jax.vjp(pool, x)
  out, vjp = jax.vjp(blocked, x)
  np.testing.assert_array_equal(out, ref)
  np.testing.assert_array_equal(vjp(ct)[0], vjp_ref(ct)[0])


def test_blocked_dense_equals_dense_on_spatial_features():
  z = jax.random.normal(jax.random.key(0), (3, 2, 3, 4, 5))
  dense = nn.Dense(7)
  spatial = lambda z: layers.blocked_to_spatial(z).reshape(3, -1)  # noqa: E731
  params = dense.init(jax.random.key(1), spatial(z))
  out, grads = jax.vjp(layers.BlockedDense(7).apply, params, z)[0], None
  ref = dense.apply(params, spatial(z))
  assert_close(out, ref)
  loss = lambda p, z, m: jnp.sum(jnp.sin(m(p, z)))  # noqa: E731
  grads = jax.grad(loss, (0, 1))(params, z, layers.BlockedDense(7).apply)
  grads_ref = jax.grad(loss, (0, 1))(params, z, lambda p, z: dense.apply(p, spatial(z)))
  assert_close(grads, grads_ref)


def test_blocked_kernel_rejects_even_kernels():
  with pytest.raises(ValueError, match="odd kernel"):
    layers.blocked_kernel(jnp.zeros((4, 4, 1, 1)))


# --- LeNet5 -----------------------------------------------------------------

# rrelu: in evaluation, where its slope is fixed.
SPECS = ["relu", "tanh", "glu", "prelu", "swish_beta(mode='channel')", "maxout(k=2)", "rrelu"]


def _only_params(variables):
  # init also returns the sown pre-activations; apply would append to them.
  return {"params": variables["params"]}


def _lenet(spec, fast, **kw):
  return models.LeNet5(activation=activations.get(spec), fast_layers=fast, **kw)


def _logits_and_grads(model, params, x, train=False):
  rngs = {"rrelu": jax.random.key(5)} if train else None

  def loss(p, x):
    logits = model.apply(p, x, train=train, rngs=rngs)
    return jnp.sum(jnp.sin(logits)), logits

  return jax.jit(jax.grad(loss, (0, 1), has_aux=True))(params, x)


@pytest.mark.parametrize("spec", SPECS)
def test_lenet5_fast_equals_plain(spec):
  x = 2 * jax.random.normal(jax.random.key(0), (3, 32, 32, 3))
  params = _only_params(_lenet(spec, False).init(jax.random.key(1), x))
  params = jax.tree.map(lambda p: p + 0.05 * jnp.cos(jnp.arange(p.size).reshape(p.shape)), params)
  grads, logits = _logits_and_grads(_lenet(spec, True), params, x)
  grads_ref, logits_ref = _logits_and_grads(_lenet(spec, False), params, x)
  assert_close(logits, logits_ref)
  assert_close(grads, grads_ref)


@pytest.mark.parametrize("spec, train", [("prelu(mode='element')", False), ("rrelu", True)])
def test_lenet5_falls_back_where_the_layout_matters(spec, train):
  # Per-element slopes and per-element noise are shaped like the plain layout.
  a = activations.get(spec)
  assert not layers.channelwise(a, train)
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  params = _only_params(_lenet(spec, False).init(jax.random.key(1), x))
  fast = _logits_and_grads(_lenet(spec, True), params, x, train)
  plain = _logits_and_grads(_lenet(spec, False), params, x, train)
  jax.tree.map(np.testing.assert_array_equal, fast, plain)


def test_lenet5_in_bfloat16():
  x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
  params = _only_params(_lenet("relu", False).init(jax.random.key(1), x))
  (_, _), logits = _logits_and_grads(_lenet("relu", True, dtype=jnp.bfloat16), params, x)
  (_, _), ref = _logits_and_grads(_lenet("relu", False, dtype=jnp.bfloat16), params, x)
  assert logits.dtype == jnp.float32
  assert_close(logits, ref, tol=3e-2)


def test_lenet5_parameters_and_summary_do_not_depend_on_the_path():
  x = jnp.zeros((1, 32, 32, 3))
  fast, plain = _lenet("relu", True), _lenet("relu", False)
  p_fast, p_plain = fast.init(jax.random.key(3), x), plain.init(jax.random.key(3), x)
  jax.tree.map(np.testing.assert_array_equal, p_fast["params"], p_plain["params"])
  assert models.count_params(p_fast["params"]) == 697_046
  assert p_fast["params"]["conv2d"]["kernel"].shape == (5, 5, 3, 6)
  assert models.layer_table(fast, (32, 32, 3)) == models.layer_table(plain, (32, 32, 3))


def test_lenet5_preactivations_are_the_plain_ones_rearranged():
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  params = _only_params(_lenet("relu", False).init(jax.random.key(1), x))
  sown = {}
  for fast in (True, False):
    apply = jax.jit(functools.partial(_lenet("relu", fast).apply, mutable=[diagnostics.COLLECTION]))
    sown[fast] = apply(params, x)[1][diagnostics.COLLECTION]
  assert sown[True].keys() == sown[False].keys()
  for name, (z,) in sown[True].items():
    (ref,) = sown[False][name]
    assert_close(layers.blocked_to_spatial(z) if z.ndim == 5 else z, ref)


def test_fast_path_is_on_by_default_on_cpu_only(monkeypatch):
  relu = activations.get("relu")
  assert layers.use_blocked(None, relu, False, (32, 32), levels=3)
  assert not layers.use_blocked(False, relu, False, (32, 32), levels=3)
  assert not layers.use_blocked(True, relu, False, (36, 36), levels=3)  # 36/8 is not whole
  monkeypatch.setattr(layers.jax, "default_backend", lambda: "gpu")
  assert not layers.use_blocked(None, relu, False, (32, 32), levels=3)


def test_default_experiment_trains_the_same_on_either_path(tmp_path, monkeypatch):
  c = lenet5_cifar10.get_config()
  set_fields(c, batch_size=8, num_epochs=2, log_every_steps=2, data_dir=str(tmp_path / "data"))
  c.data.download = False
  with tfds.testing.mock_data(num_examples=24):
    fast = train.train_and_evaluate(c, tmp_path / "fast")
    monkeypatch.setattr(layers, "use_blocked", lambda *args, **kwargs: False)
    plain = train.train_and_evaluate(c, tmp_path / "plain")
  assert int(fast.step) == int(plain.step) == 6
  losses = {
    run: [r["loss"] for r in writers.read_metrics(tmp_path / run) if "loss" in r]
    for run in ("fast", "plain")
  }
  assert len(losses["fast"]) == len(losses["plain"]) > 0
  np.testing.assert_allclose(losses["fast"], losses["plain"], rtol=1e-3)
  # Adam turns rounding-level gradients into full-size steps, so compare in norm.
  for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(plain.params)):
    a, b = np.asarray(a), np.asarray(b)
    assert np.linalg.norm(a - b) <= 1e-2 * np.linalg.norm(b) + 1e-6
