"""A project's own activations and optimizers: resolved under jax.jit,
registered without a hand-written derivative, recorded by what they are."""

import functools

import jax
import jax.numpy as jnp
import optax
import pytest

from actlab import activations, build


def test_a_module_activation_first_resolved_inside_jit_is_checked_on_numbers(tmp_path, monkeypatch):
  (tmp_path / "jit_acts.py").write_text(
    "import jax, jax.numpy as jnp\n"
    "def tswish(x):\n"
    "  return x * jax.nn.sigmoid(x) * jnp.tanh(jnp.abs(x) + 1.0)\n"
  )
  monkeypatch.syspath_prepend(str(tmp_path))
  y = jax.jit(lambda x: activations.get("jit_acts:tswish")(x))(1.0)
  assert float(y) == pytest.approx(float(jax.nn.sigmoid(1.0) * jnp.tanh(2.0)), rel=1e-6)


def test_register_without_a_derivative_uses_autodiff_and_still_checks():
  fn = lambda x: x * jnp.tanh(jnp.logaddexp(x, 0.0))  # noqa: E731
  e = activations.Entry("test_autodiff_mish", fn)
  assert e.autodiff
  activations.register(e, override=True)
  f = activations.get("test_autodiff_mish")
  assert float(jax.grad(f)(0.5)) == pytest.approx(float(jax.grad(fn)(0.5)), rel=1e-6)
  bad = activations.Entry("test_not_elementwise", lambda x: x - jnp.mean(x))
  with pytest.raises(activations.CheckError, match="elementwise"):
    activations.register(bad)


def test_a_case_slip_suggests_the_name_itself():
  with pytest.raises(ValueError, match="Did you mean 'relu'"):
    activations.get("Relu")


def test_specs_and_optimizer_constants_tell_parts_apart():
  assert activations.spec_of(activations.get("elu(alpha=0.5)")) == "elu(alpha=0.5)"
  assert activations.spec_of(jax.nn.gelu).endswith(":gelu")
  leaky = functools.partial(jax.nn.leaky_relu, negative_slope=0.1)
  assert activations.spec_of(leaky).endswith(":leaky_relu(negative_slope=0.1)")
  a = build.optimizer_constants(optax.adamw(1e-3, b1=0.9))
  b = build.optimizer_constants(optax.adamw(1e-3, b1=0.8))
  assert a != b and 0.9 in a and 0.8 in b
