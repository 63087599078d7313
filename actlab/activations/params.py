"""Parameters of parametrised activations and the checks on their values.

>>> from actlab.activations import Param, positive
>>> Param(1.0, check=positive)  # requirement '> 0' comes from the check

A check is a function of the value that returns True when it is allowed; the
ones here carry their requirement as text, so error messages and the
catalogue can say what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax._src import core as _jax_core

Value = float | int | bool | str


def _requires(text: str) -> Callable[[Callable[[Any], bool]], Callable[[Any], bool]]:
  def mark(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    check.requirement = text  # type: ignore[attr-defined]
    return check

  return mark


@_requires("> 0")
def positive(v: float) -> bool:
  """v > 0."""
  return v > 0


@_requires(">= 0")
def nonnegative(v: float) -> bool:
  """v >= 0."""
  return v >= 0


@_requires("finite")
def finite(v: float) -> bool:
  """v is neither infinite nor NaN."""
  return math.isfinite(v)


@_requires("in [0, 1]")
def unit_interval(v: float) -> bool:
  """0 <= v <= 1."""
  return 0 <= v <= 1


def at_least(low: float) -> Callable[[Any], bool]:
  """A check for v >= low."""
  return _requires(f">= {low}")(lambda v: v >= low)


@dataclasses.dataclass(frozen=True)
class Param:
  """One parameter of a parametrised activation.

  `kind` is float, int, bool or str; a str parameter takes one of `choices`.
  `requirement` says in words what `check` allows; the checks in this module
  (`positive`, `nonnegative`, `finite`, `unit_interval`, `at_least(k)`)
  supply it themselves.
  """

  default: Value
  kind: type = float
  check: Callable[[Any], bool] = lambda v: True
  requirement: str = ""
  choices: tuple[str, ...] = ()

  def __post_init__(self):
    if not self.requirement:
      object.__setattr__(self, "requirement", getattr(self.check, "requirement", ""))

  def validate(self, entry: str, name: str, value: Any) -> Value:
    """`value` converted to the parameter's kind; ValueError if not allowed."""
    if is_array(value):
      if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
        raise ValueError(
            f"{entry}: parameter {name!r} must be one Python value here, got"
            f" {type(value).__name__} of shape {np.shape(value)}; call"
            f" actlab.activations.{entry}(x, {name}=...) to trace, map or"
            " differentiate it."
        )
      value = value.item()  # a NumPy or JAX scalar, as a Python number
    return self._validate(entry, name, value)

  def validate_array(self, entry: str, name: str, value: Any) -> Any:
    """An array or tracer value of a float parameter (one differentiated by
    jax.grad or mapped by jax.vmap), checked wherever its value is known.

    Under jax.grad the value is concrete and is checked like a number; under
    jit or vmap it is not known while tracing, and is used as given.
    """
    if self.kind is not float:
      raise ValueError(
          f"{entry}: parameter {name!r} selects the formula ({self.kind.__name__});"
          f" it must be a Python value, got {type(value).__name__}. Only float"
          " parameters can be traced, differentiated or mapped."
      )
    dtype = getattr(value, "dtype", None)
    if dtype is None or not np.issubdtype(np.dtype(dtype), np.number) or np.issubdtype(
        np.dtype(dtype), np.complexfloating):
      raise ValueError(
          f"{entry}: parameter {name!r} must be a real number or array, got"
          f" {type(value).__name__} of dtype {dtype}."
      )
    known = _concrete(value)
    if known is not None:
      for v in np.unique(np.asarray(known, np.float64).ravel()):
        self._validate(entry, name, float(v))
    return value

  def _validate(self, entry: str, name: str, value: Any) -> Value:
    if self.kind is bool:
      if not isinstance(value, bool):
        raise ValueError(
            f"{entry}: parameter {name!r} must be True or False, got {value!r}."
        )
    elif self.kind is str:
      if not isinstance(value, str) or value not in self.choices:
        options = ", ".join(map(repr, self.choices))
        raise ValueError(
            f"{entry}: parameter {name!r} must be one of {options}, got {value!r}."
        )
    elif self.kind is int:
      if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{entry}: parameter {name!r} must be an integer, got {value!r}."
        )
    else:
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"{entry}: parameter {name!r} must be a number, got {value!r}."
        )
      value = float(value)
      # 1e400 in a spec or a call overflows to inf: refused like NaN, which
      # every comparison in a check would otherwise let through silently.
      if not math.isfinite(value):
        raise ValueError(
            f"{entry}: parameter {name!r}={value!r} is out of range; it must be a"
            f" finite number{' ' + self.requirement if self.requirement else ''}"
            " (a literal such as 1e400 overflows to inf)."
        )
    if not self.check(value):
      raise ValueError(
          f"{entry}: parameter {name!r}={value!r} is out of range; it must be"
          f" {self.requirement or 'accepted by its check'}."
      )
    return value


def is_array(value: Any) -> bool:
  """Whether `value` is a JAX or NumPy array or scalar (a tracer included),
  not a Python number."""
  return isinstance(value, (jax.Array, jax.core.Tracer, np.ndarray, np.generic))


def is_traced(value: Any) -> bool:
  """Whether a parameter value must stay an array: a tracer (jax.grad,
  jax.vmap, jit) or an array of more than one value."""
  return is_array(value) and (isinstance(value, jax.core.Tracer) or np.ndim(value) != 0)


def _concrete(value: Any) -> Any:
  """The value of an array or tracer if it is known now (a concrete array,
  or the primal under jax.grad/jax.jvp), else None (jit, vmap).

  JAX has no public form of this query; without it, validation waits for a
  concrete value.
  """
  if not isinstance(value, jax.core.Tracer):
    return value
  to_concrete = getattr(_jax_core, "to_concrete_value", None)
  return None if to_concrete is None else to_concrete(value)
