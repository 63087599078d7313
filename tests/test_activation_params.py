"""Activation parameters as arrays: jax.grad and jax.vmap over them, as with
jax.nn.elu's alpha, and the checks on their values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actlab import activations

# Every float parameter of every elementwise entry, at a value inside its range.
FLOAT_PARAMS = [
    (name, key, 0.7 if p.requirement == "in [0, 1]" else float(p.default) * 1.3 + 0.1)
    for name in activations.names()
    for key, p in activations.entry(name).params.items()
    if p.kind is float
]
# Away from every kink and jump of the entries above (0, +-threshold).
X = np.array([-2.7, -1.3, -0.45, 0.35, 1.7, 2.9])


def test_every_float_parameter_is_covered():
  covered = {name for name, _, _ in FLOAT_PARAMS}
  assert {"elu", "celu", "leaky_relu", "squareplus", "snake", "threshold"} <= covered


@pytest.mark.parametrize(("name", "key", "value"), FLOAT_PARAMS)
def test_grad_in_a_parameter_matches_finite_differences(name, key, value):
  f = getattr(activations, name)
  with jax.enable_x64(True):
    x = jnp.asarray(X, jnp.float64)
    # d/da of sum(f(x, a)) is the sum of the per-point derivatives; with the
    # parameter as an array of x's shape, one grad gives each of them.
    a = jnp.full(x.shape, value)
    g = jax.grad(lambda a: f(x, **{key: a}).sum())(a)
    h = 1e-6 * max(1.0, abs(value))
    fd = (f(x, **{key: a + h}) - f(x, **{key: a - h})) / (2 * h)
  np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_the_derivative_in_x_stays_analytic_with_a_traced_parameter():
  x = jnp.asarray(X, jnp.float32)
  dx = jax.vmap(jax.grad(lambda a, x: activations.elu(x, alpha=a), argnums=1),
                in_axes=(None, 0))(0.5, x)
  np.testing.assert_allclose(dx, activations.derivative("elu(alpha=0.5)")(x), rtol=1e-6)


ANALYTIC = {
    # d f / d parameter, written out.
    "elu": lambda x, a: np.where(x > 0, 0.0, np.expm1(x)),
    "leaky_relu": lambda x, a: np.where(x >= 0, 0.0, x),
    "celu": lambda x, a: np.where(x > 0, 0.0, np.expm1(x / a) - x / a * np.exp(x / a)),
    "squareplus": lambda x, a: 0.25 / np.sqrt(x * x + a),
    "snake": lambda x, a: 2 * x * np.sin(a * x) * np.cos(a * x) / a - np.sin(a * x) ** 2 / a**2,
}


@pytest.mark.parametrize("name", sorted(ANALYTIC))
def test_grad_in_a_parameter_is_the_analytic_derivative(name):
  key = next(iter(activations.entry(name).params))
  f = getattr(activations, name)
  with jax.enable_x64(True):
    x = jnp.asarray(X, jnp.float64)
    g = jax.grad(lambda a: f(x, **{key: a}).sum())(jnp.full(x.shape, 0.8))
  np.testing.assert_allclose(g, ANALYTIC[name](X, 0.8), rtol=1e-12, atol=1e-15)


def test_like_jax_nn_elu():
  x = jnp.linspace(-3.0, 3.0, 13)
  ours = jax.grad(lambda a: activations.elu(x, alpha=a).sum())(1.0)
  theirs = jax.grad(lambda a: jax.nn.elu(x, alpha=a).sum())(1.0)
  np.testing.assert_allclose(ours, theirs, rtol=1e-6)
  alphas = jnp.array([0.25, 1.0, 3.0])
  mapped = jax.vmap(lambda a: activations.elu(x, alpha=a))(alphas)
  for row, a in zip(mapped, [0.25, 1.0, 3.0]):
    np.testing.assert_array_equal(row, activations.elu(x, alpha=a))
  # A per-channel parameter broadcasts against x, and jit compiles it once.
  per_channel = jax.jit(lambda x, a: activations.leaky_relu(x, negative_slope=a))
  y = per_channel(-jnp.ones((2, 3)), jnp.array([[0.1, 0.2, 0.3]]))
  np.testing.assert_allclose(y, -jnp.array([[0.1, 0.2, 0.3]] * 2), rtol=1e-6)
  # Half types keep their type with a traced parameter.
  h = jax.vmap(lambda a: activations.elu(x.astype(jnp.bfloat16), alpha=a))(alphas)
  assert h.dtype == jnp.bfloat16


@pytest.mark.parametrize(("value", "says"), [
    (-1.0, "must be > 0"),
    (float("nan"), "finite number > 0"),
    (1e400, "1e400 overflows to inf"),
])
def test_concrete_values_are_still_checked(value, says):
  x = jnp.ones(3)
  with pytest.raises(ValueError, match=says):
    jax.grad(lambda a: activations.elu(x, alpha=a).sum())(value)
  with pytest.raises(ValueError, match=says):
    activations.elu(x, alpha=value)
  with pytest.raises(ValueError, match=says):
    activations.elu(x, alpha=np.array([0.5, value]))


def test_out_of_range_numbers_are_refused_everywhere():
  with pytest.raises(ValueError, match="'negative_slope'=inf.*overflows to inf"):
    activations.get("leaky_relu(negative_slope=1e400)")
  with pytest.raises(ValueError, match="'negative_slope'=inf"):
    activations.leaky_relu(jnp.ones(2), negative_slope=1e400)
  with pytest.raises(ValueError, match="'value'=nan"):
    activations.threshold(jnp.ones(2), value=float("nan"))
  # NumPy and JAX scalars are numbers.
  np.testing.assert_array_equal(activations.elu(-jnp.ones(2), alpha=np.float64(0.5)),
                                activations.elu(-jnp.ones(2), alpha=0.5))


def test_formula_choosing_parameters_must_be_python_values():
  x = jnp.ones(3)
  with pytest.raises(ValueError, match="'approximate' selects the formula"):
    jax.vmap(lambda a: activations.gelu(x, approximate=a))(jnp.array([True, False]))
