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
    if not self.check(value):
      raise ValueError(
          f"{entry}: parameter {name!r}={value!r} is out of range; it must be"
          f" {self.requirement or 'accepted by its check'}."
      )
    return value
