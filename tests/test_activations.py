"""Activations: values, analytic derivatives against autodiff, kinks, specs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from actlab import activations

NAMES = activations.names()
# Every entry with non-default parameters too, so parameter plumbing is tested.
SPECS = NAMES + [
    "leaky_relu(negative_slope=0.2)",
    "elu(alpha=0.5)",
    "gelu(approximate=True)",
]
GRID = np.concatenate([
    -np.logspace(-3, 4, 60), [0.0], np.logspace(-3, 4, 60), np.linspace(-6, 6, 241)
])


def _away_from_kinks(spec, x, eps=1e-2):
  ks = np.array(list(activations.kinks(spec)) or [np.inf])
  return x[np.min(np.abs(x[:, None] - ks[None, :]), axis=1) > eps]


@pytest.mark.parametrize("spec", SPECS)
def test_analytic_derivative_matches_autodiff_of_formula(spec):
  name, kw = activations.parse_spec(spec)
  e = activations.entry(name)
  params = e.bind(**kw)
  with jax.enable_x64(True):
    x = jnp.asarray(_away_from_kinks(spec, GRID), jnp.float64)
    autodiff = jax.vmap(jax.grad(lambda v: e.fn(v, **params)))(x)
    analytic = activations.derivative(spec)(x)
  # Autodiff of a formula may round to 0 in the tails where the analytic form
  # keeps the true tiny value, hence the absolute floor.
  np.testing.assert_allclose(analytic, autodiff, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS)
def test_grad_of_registered_function_is_the_analytic_derivative(spec):
  f = activations.get(spec)
  x = jnp.asarray(GRID, jnp.float32)
  np.testing.assert_allclose(
      jax.vmap(jax.grad(f))(x), activations.derivative(spec)(x), rtol=1e-6, atol=0
  )


@pytest.mark.parametrize("spec", SPECS)
def test_check_grads_away_from_kinks(spec):
  with jax.enable_x64(True):
    x = jnp.asarray(_away_from_kinks(spec, np.linspace(-4, 4, 33), eps=0.05))
    check_grads(activations.get(spec), (x,), order=2, modes=("fwd", "rev"), eps=1e-4)


@pytest.mark.parametrize("spec", SPECS)
def test_jit_and_eager_agree(spec):
  f = activations.get(spec)
  x = jnp.asarray(GRID, jnp.float32)
  with jax.disable_jit():
    eager, eager_grad = f(x), jax.vmap(jax.grad(f))(x)
  # XLA may fuse x**3 or a*b+c into one rounding: allow a few ulp of the
  # O(1) terms, no more (derivatives such as silu's cancel near their zeros).
  eps = np.finfo(np.float32).eps
  tol = dict(rtol=4 * eps, atol=4 * eps)
  np.testing.assert_allclose(f(x), eager, **tol)
  np.testing.assert_allclose(jax.vmap(jax.grad(f))(x), eager_grad, **tol)


@pytest.mark.parametrize(
    "spec, kinks",
    [
        ("relu", {0.0: 0.0}),
        ("leaky_relu", {0.0: 1.0}),
        ("leaky_relu(negative_slope=0.2)", {0.0: 1.0}),
        ("elu(alpha=0.5)", {0.0: 0.5}),
        ("elu", {}),
        ("sigmoid", {}),
    ],
)
def test_documented_kink_derivatives_hold(spec, kinks):
  assert activations.kinks(spec) == kinks
  f = activations.get(spec)
  for x, d in kinks.items():
    assert float(jax.grad(f)(jnp.float32(x))) == d


def test_tutorial_values_at_minus_one_zero_one():
  x = jnp.array([-1.0, 0.0, 1.0], jnp.float32)
  np.testing.assert_allclose(
      activations.get("sigmoid")(x), [0.26894143, 0.5, 0.7310586], rtol=1e-6
  )
  np.testing.assert_allclose(
      activations.get("tanh")(x), [-0.7615942, 0.0, 0.7615942], rtol=1e-6
  )
  np.testing.assert_array_equal(activations.get("relu")(x), [0.0, 0.0, 1.0])


def test_tutorial_derivative_bounds():
  with jax.enable_x64(True):
    x = jnp.linspace(-20, 20, 400001, dtype=jnp.float64)
    ds = np.asarray(activations.derivative("sigmoid")(x))
    dt = np.asarray(activations.derivative("tanh")(x))
    at_zero = [float(activations.derivative(n)(0.0)) for n in ("sigmoid", "tanh")]
  assert ds.max() == pytest.approx(0.25, abs=1e-12) and ds.max() <= 0.25
  assert dt.max() == pytest.approx(1.0, abs=1e-12) and dt.max() <= 1.0
  assert at_zero == [0.25, 1.0]  # the maxima, at 0
  assert ds[0] < 1e-8 and dt[0] < 1e-16  # both saturate


def test_derivatives_keep_precision_in_the_tails():
  with jax.enable_x64(True):
    x = jnp.array([-40.0, 40.0], jnp.float64)
    np.testing.assert_allclose(
        activations.derivative("sigmoid")(x), np.exp(-40) / (1 + np.exp(-40)) ** 2, rtol=1e-12
    )
    np.testing.assert_allclose(
        activations.derivative("tanh")(x), 1 / np.cosh(40.0) ** 2, rtol=1e-12
    )
    assert float(jax.grad(activations.get("elu"))(-40.0)) == pytest.approx(np.exp(-40), rel=1e-12)


def test_spec_with_parameters():
  f = activations.get("leaky_relu(negative_slope=0.2)")
  np.testing.assert_allclose(f(jnp.array([-1.0, 2.0])), [-0.2, 2.0])
  assert activations.get("leaky_relu(negative_slope=0.2)") is f  # cached
  assert activations.get("swish") is activations.get("silu")
  assert activations.canonical("elu") == "elu(alpha=1.0)"


@pytest.mark.parametrize(
    "spec, words",
    [
        ("rleu", ["Unknown activation 'rleu'", "Did you mean 'relu'", "leaky_relu"]),
        ("relu(", ["Malformed activation spec"]),
        ("elu(0.5)", ["must be named", "elu(alpha=0.5)"]),
        ("elu(alpha=__import__('os'))", ["must be a literal"]),
        ("elu(beta=1)", ["has no parameter 'beta'", "alpha"]),
        ("elu(alpha=-1)", ["out of range", "> 0"]),
        ("gelu(approximate=1)", ["True or False"]),
        ("relu + 1", ["Malformed"]),
        ("", ["non-empty string"]),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, words):
  with pytest.raises(ValueError) as err:
    activations.get(spec)
  for w in words:
    assert w in str(err.value)
