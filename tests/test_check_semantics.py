"""check() on functions written the ordinary way: NaN at an infinite input
where a limit exists, kinks nobody stated."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actlab import activations


def my_mish(x):
  return x * jnp.tanh(jnp.logaddexp(x, 0.0))


def test_readme_mish_passes_every_check():
  report = activations.check(my_mish, name="my_mish", dtypes=("float32", "float64"))
  assert report.ok, str(report)
  # silu-like formulas are inf * 0 = NaN at -inf: accepted, and said so.
  assert "NaN at -inf accepted" in report["limits[float32]"].detail


@pytest.mark.parametrize("fn", [jax.nn.relu, jax.nn.gelu, jax.nn.silu, jax.nn.mish])
def test_jax_nn_activations_pass(fn):
  checks = ("elementwise", "check_grads", "jit", "limits", "nan", "finite")
  report = activations.check(fn, checks=checks, dtypes=("float32", "float64"))
  assert report.ok, str(report)


def test_relu_kink_is_found_and_named():
  report = activations.check(jax.nn.relu, checks=("check_grads",))
  assert report.ok, str(report)
  assert "unstated kinks at x = 0" in report["check_grads"].detail


def test_stated_limits_are_held_exactly():
  # The same NaN fails once the limit is stated.
  report = activations.check(jax.nn.silu, checks=("limits",), dtypes=("float32",),
                             limits=((0.0, np.inf), (0.0, 1.0)))
  assert not report.ok
  assert report.worst.x == -np.inf and np.isnan(report.worst.value)


def test_a_wrong_number_at_infinity_still_fails():
  # tanh clamped to 0 at +-inf: a finite value that is not the limit.
  f = lambda x: jnp.where(jnp.isinf(x), 0.0, jnp.tanh(x))  # noqa: E731
  report = activations.check(f, checks=("limits",), dtypes=("float32",))
  assert not report.ok
  assert report.worst.expected in (-1.0, 1.0) and report.worst.value == 0.0


def test_failure_at_an_unstated_kink_hints_at_kinks():
  # A derivative that is wrong at the kink only: jax.grad outside both
  # one-sided slopes (0 and 1) at x = 0.
  @jax.custom_jvp
  def bad_relu(x):
    return jnp.maximum(x, 0.0)

  bad_relu.defjvp(lambda p, t: (bad_relu(p[0]), jnp.where(p[0] == 0, 5.0, p[0] > 0) * t[0]))
  report = activations.check(bad_relu, checks=("check_grads",))
  assert not report.ok
  detail = report["check_grads"].detail
  assert "f has a kink at x=0" in detail and "kinks={0.0:" in detail, detail
  # Stating the kink (with the value jax.grad gives) settles it.
  assert activations.check(bad_relu, kinks={0.0: 5.0}, checks=("check_grads",)).ok
