"""The activation registry: entries, spec strings, and `get`.

An entry couples a primal formula with its analytic derivative. `get` binds
the parameters of a spec string once and returns a jitted function whose
`jax.custom_jvp` rule is the analytic derivative, so the value a model trains
with at a kink is the documented one, not whatever autodiff of the formula
happens to produce.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Param:
  """One parameter of a parametrised activation."""

  default: float | bool
  kind: type = float
  check: Callable[[Any], bool] = lambda v: True
  requirement: str = ""

  def validate(self, entry: str, name: str, value: Any) -> float | bool:
    if self.kind is bool:
      if not isinstance(value, bool):
        raise ValueError(
            f"{entry}: parameter {name!r} must be True or False, got {value!r}."
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
          f" {self.requirement}."
      )
    return value


@dataclasses.dataclass(frozen=True)
class Entry:
  """A registered activation: formula, analytic derivative and facts.

  Attributes:
    name: canonical name used in spec strings.
    fn: primal formula `fn(x, **params)`; differentiable by `jax.grad`.
    derivative: analytic `f'(x, **params)`, used as the custom JVP.
    params: the parameters a spec string may set.
    kinks: `kinks(**params)` -> {x: f'(x)} for every point where f is not
      differentiable, with the value actlab uses there.
    aliases: other names that resolve to this entry.
    summary: one line for tables.
  """

  name: str
  fn: Callable[..., Array]
  derivative: Callable[..., Array]
  params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
  kinks: Callable[..., Mapping[float, float]] = lambda **_: {}
  aliases: tuple[str, ...] = ()
  summary: str = ""

  def bind(self, **params: Any) -> dict[str, float | bool]:
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
    return bound


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}


def register(entry: Entry) -> Entry:
  """Adds `entry` to the registry; names and aliases must be new."""
  for key in (entry.name, *entry.aliases):
    if key in _REGISTRY or key in _ALIASES:
      raise ValueError(f"activation name {key!r} is already registered.")
  _REGISTRY[entry.name] = entry
  for alias in entry.aliases:
    _ALIASES[alias] = entry.name
  return entry


def names(include_aliases: bool = False) -> list[str]:
  """Sorted canonical names (and aliases, if asked)."""
  keys = list(_REGISTRY)
  if include_aliases:
    keys += list(_ALIASES)
  return sorted(keys)


def entry(name: str) -> Entry:
  """The registry entry for `name` (canonical or alias)."""
  key = _ALIASES.get(name, name)
  if key not in _REGISTRY:
    valid = names(include_aliases=True)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown activation {name!r}.{hint} Valid names: {', '.join(valid)}."
    )
  return _REGISTRY[key]


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
  """Splits `name` or `name(key=value, ...)` into the name and literal kwargs.

  Only literals are accepted (numbers, booleans); nothing is evaluated.
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(
        f"An activation spec must be a non-empty string such as 'relu' or"
        f" 'leaky_relu(negative_slope=0.2)', got {spec!r}."
    )
  try:
    node = ast.parse(spec.strip(), mode="eval").body
  except SyntaxError as e:
    raise ValueError(
        f"Malformed activation spec {spec!r}: {e.msg}. Expected 'name' or"
        " 'name(key=value, ...)', e.g. 'elu(alpha=0.5)'."
    ) from None
  if isinstance(node, ast.Name):
    return node.id, {}
  if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
    raise ValueError(
        f"Malformed activation spec {spec!r}: expected 'name' or"
        " 'name(key=value, ...)', e.g. 'elu(alpha=0.5)'."
    )
  if node.args:
    raise ValueError(
        f"Malformed activation spec {spec!r}: parameters must be named, e.g."
        f" '{node.func.id}(alpha=0.5)'."
    )
  kwargs = {}
  for kw in node.keywords:
    if kw.arg is None:
      raise ValueError(f"Malformed activation spec {spec!r}: '**' is not allowed.")
    try:
      kwargs[kw.arg] = ast.literal_eval(kw.value)
    except ValueError:
      raise ValueError(
          f"Malformed activation spec {spec!r}: the value of {kw.arg!r} must be"
          f" a literal number or True/False, got '{ast.unparse(kw.value)}'."
      ) from None
  return node.func.id, kwargs


def _with_derivative(e: Entry, params: dict[str, Any]) -> Callable[[Array], Array]:
  """The formula with params bound, differentiated by its analytic derivative."""

  @jax.custom_jvp
  def f(x: Array) -> Array:
    return e.fn(x, **params)

  @f.defjvp
  def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return f(x), (e.derivative(x, **params) * t).astype(t.dtype)

  f.__name__ = e.name
  f.__qualname__ = e.name
  f.__doc__ = e.fn.__doc__
  return f


@functools.lru_cache(maxsize=None)
def _get_cached(name: str, items: tuple[tuple[str, Any], ...]):
  e = entry(name)
  return jax.jit(_with_derivative(e, dict(items)))


def get(spec: str) -> Callable[[Array], Array]:
  """Resolves a spec string such as `'leaky_relu(negative_slope=0.2)'`.

  Returns a jitted elementwise function of one array. The same spec always
  returns the same object, so it hashes and caches well as a module field.
  """
  name, kwargs = parse_spec(spec)
  bound = entry(name).bind(**kwargs)
  return _get_cached(_ALIASES.get(name, name), tuple(sorted(bound.items())))


def canonical(spec: str) -> str:
  """The spec with its canonical name and every parameter spelled out."""
  name, kwargs = parse_spec(spec)
  e = entry(name)
  bound = e.bind(**kwargs)
  if not bound:
    return e.name
  return f"{e.name}({', '.join(f'{k}={v!r}' for k, v in bound.items())})"


def derivative(spec: str) -> Callable[[Array], Array]:
  """The analytic derivative f'(x) of a spec, as a jitted function."""
  name, kwargs = parse_spec(spec)
  e = entry(name)
  bound = e.bind(**kwargs)
  return jax.jit(functools.partial(e.derivative, **bound))


def kinks(spec: str) -> dict[float, float]:
  """{x: f'(x)} at every non-differentiable point of a spec."""
  name, kwargs = parse_spec(spec)
  e = entry(name)
  return dict(e.kinks(**e.bind(**kwargs)))


def positive(v: float) -> bool:
  return v > 0


def nonnegative(v: float) -> bool:
  return v >= 0
