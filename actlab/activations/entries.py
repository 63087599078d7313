"""`Entry`: an activation's formula, analytic derivative, parameters and facts."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax

from actlab.activations.metadata import Facts
from actlab.activations.params import Param, Value

Array = jax.Array
KINDS = ("elementwise", "gated", "module")


@dataclasses.dataclass(frozen=True)
class Entry:
  """A registered activation: formula, analytic derivative and facts.

  Attributes:
    name: canonical name used in spec strings.
    fn: primal formula `fn(x, **params)`; differentiable by `jax.grad`.
    derivative: analytic `f'(x, **params)`, used as the custom JVP; without
      one, forward-mode autodiff of `fn` is the derivative (still checked by
      `register`, elementwise and finite).
    params: the parameters a spec string may set.
    kinks: `kinks(**params)` (or a dict) -> {x: f'(x)} for every point where f is not
      differentiable, with the value actlab uses there.
    aliases: other names that resolve to this entry.
    summary: one line for tables.
    facts: `facts(**params)` -> `Facts` (or a `Facts` when there are no
      parameters): range, monotonicity, smoothness, slopes, saturation.
    value_and_derivative: optional `(f(x), f'(x))` sharing intermediate
      terms; when given, `fn` and `derivative` may be None.
    kind: 'elementwise', 'gated' or 'module'.
    module: for kind 'module', the flax.linen Module class; its fields are
      the params.
    jvp: for kind 'gated', `jvp(x, t, **params)` -> (f(x), tangent).
    width: `width(**params)` -> how many pre-activation units the activation
      consumes per output unit (1 for elementwise functions).
    check: optional `check(**params)` -> error message or '' for constraints
      that involve several parameters.
    integer: integer inputs keep their dtype (the formula maps integers to
      integers, as jax.nn's relu does); otherwise they become the default
      float type.
  """

  name: str
  fn: Callable[..., Array] | None = None
  derivative: Callable[..., Array] | None = None
  params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
  kinks: Callable[..., Mapping[float, float]] | Mapping[float, float] = lambda **_: {}
  aliases: tuple[str, ...] = ()
  summary: str = ""
  facts: Callable[..., Facts] | Facts | None = None
  value_and_derivative: Callable[..., tuple[Array, Array]] | None = None
  kind: str = "elementwise"
  module: type | None = None
  jvp: Callable[..., tuple[Array, Array]] | None = None
  width: Callable[..., int] = lambda **_: 1
  check: Callable[..., str] | None = None
  integer: bool = False

  def __post_init__(self):
    if isinstance(self.kinks, Mapping):
      points = dict(self.kinks)
      object.__setattr__(self, "kinks", lambda **_: points)
    if self.kind not in KINDS:
      raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}.")
    vd = self.value_and_derivative
    if vd is not None:
      # Under jit the unused half of the pair is dead code and is dropped.
      if self.fn is None:
        fn = functools.wraps(vd)(lambda x, **p: vd(x, **p)[0])
        object.__setattr__(self, "fn", fn)
      if self.derivative is None:
        object.__setattr__(self, "derivative", lambda x, **p: vd(x, **p)[1])
    if self.kind == "elementwise" and self.fn is None:
      raise ValueError(f"{self.name}: an elementwise entry needs fn (the formula).")
    if self.kind == "elementwise" and self.derivative is None:
      object.__setattr__(self, "derivative", functools.partial(_autodiff, self.fn))

  @property
  def autodiff(self) -> bool:
    """Whether the derivative is autodiff of the formula (none was stated)."""
    d = self.derivative
    return isinstance(d, functools.partial) and d.func is _autodiff

  def bind(self, **params: Any) -> dict[str, Value]:
    """Validates `params` and fills in defaults."""
    unknown = sorted(set(params) - set(self.params))
    if unknown:
      known = ", ".join(self.params) or "none"
      raise ValueError(
          f"{self.name} has no parameter {', '.join(map(repr, unknown))};"
          f" its parameters are: {known}."
      )
    bound = {k: p.default for k, p in self.params.items()}
    for k, v in params.items():
      bound[k] = self.params[k].validate(self.name, k, v)
    problem = self.check(**bound) if self.check else ""
    if problem:
      raise ValueError(f"{self.name}: {problem}")
    return bound


def _autodiff(fn: Callable[..., Array], x: Array, **params: Any) -> Array:
  """f'(x) of an elementwise f by one forward-mode pass (any shape of x)."""
  x = jax.numpy.asarray(x)
  return jax.jvp(lambda t: fn(t, **params), (x,), (jax.numpy.ones_like(x),))[1]
