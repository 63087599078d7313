"""How `get` turns an entry into a jitted function with its analytic JVP."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from actlab.activations import numerics

if TYPE_CHECKING:
  from actlab.activations.entries import Entry

Array = jax.Array


def as_inexact(x: Any) -> Array:
  """x as an array; integer and boolean inputs become the default float."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.inexact):
    x = x.astype(jnp.result_type(float))
  return x


def half_as_f32(f: Callable[[Array], Any]) -> Callable[[Array], Any]:
  """Evaluates `f` in float32 for float16/bfloat16 inputs, rounding once.

  Intermediate terms such as x**2 or x**3 would overflow float16 long before
  the result does.
  """

  def wrapped(x: Array):
    if x.dtype in (jnp.float16, jnp.bfloat16):
      with numerics.precise():
        out = f(x.astype(jnp.float32))
      return jax.tree.map(lambda o: o.astype(x.dtype), out)
    return f(x)

  return wrapped


def elementwise(e: Entry, params: dict[str, Any]) -> Callable[[Array], Array]:
  """The formula with params bound, differentiated by its analytic derivative."""
  value = half_as_f32(lambda x: e.fn(x, **params))
  if e.value_and_derivative is not None:
    pair = half_as_f32(lambda x: e.value_and_derivative(x, **params))
  else:
    pair = half_as_f32(lambda x: (e.fn(x, **params), e.derivative(x, **params)))

  @jax.custom_jvp
  def f(x: Array) -> Array:
    return value(x)

  @f.defjvp
  def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y, d = pair(x)
    return y, (d * t).astype(t.dtype)

  if e.integer:
    # Integers stay integers, as in jax.nn.relu; jax.grad refuses them anyway.
    return named(
        e, lambda x: e.fn(jnp.asarray(x), **params) if _is_integer(x) else f(as_inexact(x))
    )
  return named(e, lambda x: f(as_inexact(x)))


def with_array_params(
    e: Entry, fixed: dict[str, Any], names: tuple[str, ...]
) -> Callable[..., Array]:
  """f(x, *values) of an elementwise entry whose parameters `names` are
  arrays or tracers (jax.grad or jax.vmap over a parameter), like jax.nn.elu's
  alpha.

  The derivative in x is the analytic one, as in `elementwise`; the
  derivative in a parameter is forward-mode autodiff of the formula.
  """

  def params(values: tuple[Any, ...]) -> dict[str, Any]:
    return {**fixed, **dict(zip(names, values))}

  def value(x: Array, values: tuple[Any, ...]) -> Array:
    return half_as_f32(lambda x: e.fn(x, **params(values)))(x)

  def pair(x: Array, values: tuple[Any, ...]) -> tuple[Array, Array]:
    p = params(values)
    if e.value_and_derivative is not None:
      return half_as_f32(lambda x: e.value_and_derivative(x, **p))(x)
    return half_as_f32(lambda x: (e.fn(x, **p), e.derivative(x, **p)))(x)

  @jax.custom_jvp
  def f(x: Array, *values: Any) -> Array:
    return value(x, values)

  @f.defjvp
  def _jvp(primals, tangents):
    (x, *values), (t, *dvalues) = primals, tangents
    y, d = pair(x, tuple(values))
    _, dy = jax.jvp(lambda *v: value(x, v), tuple(values), tuple(dvalues))
    return y, (d * t + dy).astype(y.dtype)

  def call(x: Any, *values: Any) -> Array:
    x = as_inexact(x)
    # The parameters in the type f computes in (float32 for half types), as
    # Python numbers would be (weakly typed), so the result keeps x's type.
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    return f(x, *(jnp.asarray(v).astype(dtype) for v in values))

  return named(e, call)


def _is_integer(x: Any) -> bool:
  dtype = jnp.result_type(x)
  return jnp.issubdtype(dtype, jnp.integer)


def gated(e: Entry, params: dict[str, Any]) -> Callable[[Array], Array]:
  """A width-changing entry with its own JVP rule `e.jvp`."""

  @jax.custom_jvp
  def f(x: Array) -> Array:
    return e.fn(x, **params)

  @f.defjvp
  def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y, dy = e.jvp(x, t, **params)
    return y, dy.astype(y.dtype)

  return named(e, lambda x: f(as_inexact(x)))


def named(e: Entry, f: Callable[[Array], Array]) -> Callable[[Array], Array]:
  """f with the entry's name and docstring, which `jax.jit` carries over."""
  f.__name__ = f.__qualname__ = e.name
  f.__doc__ = e.fn.__doc__
  return f
