"""The activation registry: entries, spec strings, `get` and `describe`.

An entry couples a primal formula with its analytic derivative. `get` binds
the parameters of a spec string once and returns a jitted function whose
`jax.custom_jvp` rule is the analytic derivative, so the value a model trains
with at a kink is the documented one, not whatever autodiff of the formula
happens to produce.

Three kinds of entry share the registry: 'elementwise' (pure functions that
drop into any model), 'gated' (pure functions that halve the last axis, such
as glu) and 'module' (flax.linen modules with parameters or randomness, which
`get` returns as a module factory).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax

from actlab.activations import wrap
from actlab.activations.metadata import Description, Facts

Array = jax.Array
Value = float | int | bool | str
KINDS = ("elementwise", "gated", "module")


@dataclasses.dataclass(frozen=True)
class Param:
  """One parameter of a parametrised activation.

  `kind` is float, int, bool or str; a str parameter takes one of `choices`.
  """

  default: Value
  kind: type = float
  check: Callable[[Any], bool] = lambda v: True
  requirement: str = ""
  choices: tuple[str, ...] = ()

  def validate(self, entry: str, name: str, value: Any) -> Value:
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
  """

  name: str
  fn: Callable[..., Array] | None = None
  derivative: Callable[..., Array] | None = None
  params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
  kinks: Callable[..., Mapping[float, float]] = lambda **_: {}
  aliases: tuple[str, ...] = ()
  summary: str = ""
  facts: Callable[..., Facts] | Facts | None = None
  value_and_derivative: Callable[..., tuple[Array, Array]] | None = None
  kind: str = "elementwise"
  module: type | None = None
  jvp: Callable[..., tuple[Array, Array]] | None = None
  width: Callable[..., int] = lambda **_: 1
  check: Callable[..., str] | None = None

  def __post_init__(self):
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
    if self.kind == "elementwise" and (self.fn is None or self.derivative is None):
      raise ValueError(f"{self.name}: an elementwise entry needs fn and derivative.")

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


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}
# Width multipliers of the objects `get` returned, by identity.
_WIDTHS: dict[int, int] = {}


def register(entry: Entry) -> Entry:
  """Adds `entry` to the registry; names and aliases must be new."""
  for key in (entry.name, *entry.aliases):
    if key in _REGISTRY or key in _ALIASES:
      raise ValueError(f"activation name {key!r} is already registered.")
  _REGISTRY[entry.name] = entry
  for alias in entry.aliases:
    _ALIASES[alias] = entry.name
  return entry


def names(include_aliases: bool = False, kind: str = "elementwise") -> list[str]:
  """Sorted canonical names (and aliases, if asked) of one kind of entry.

  `kind` is 'elementwise' (the default: pure functions that drop into any
  model unchanged), 'gated', 'module' or 'all'.
  """
  if kind != "all" and kind not in KINDS:
    raise ValueError(f"kind must be 'all' or one of {KINDS}, got {kind!r}.")
  keep = lambda n: kind == "all" or _REGISTRY[n].kind == kind  # noqa: E731
  keys = [n for n in _REGISTRY if keep(n)]
  if include_aliases:
    keys += [a for a, n in _ALIASES.items() if keep(n)]
  return sorted(keys)


def entry(name: str) -> Entry:
  """The registry entry for `name` (canonical or alias)."""
  key = _ALIASES.get(name, name)
  if key not in _REGISTRY:
    valid = names(include_aliases=True, kind="all")
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown activation {name!r}.{hint} Valid names: {', '.join(valid)}."
    )
  return _REGISTRY[key]


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
  """Splits `name` or `name(key=value, ...)` into the name and literal kwargs.

  Only literals are accepted (numbers, booleans, strings); nothing is
  evaluated.
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
          f" a literal number, string or True/False, got"
          f" '{ast.unparse(kw.value)}'."
      ) from None
  return node.func.id, kwargs


@functools.cache
def _get_cached(name: str, items: tuple[tuple[str, Any], ...]):
  e = entry(name)
  params = dict(items)
  if e.kind == "module":
    out = functools.partial(e.module, **params)
  else:
    build = wrap.elementwise if e.kind == "elementwise" else wrap.gated
    out = jax.jit(build(e, params))
  _WIDTHS[id(out)] = e.width(**params)
  return out


def get(spec: str) -> Callable[..., Any]:
  """Resolves a spec string such as `'leaky_relu(negative_slope=0.2)'`.

  Returns a jitted function of one array for 'elementwise' and 'gated'
  entries, and a flax.linen Module factory (a `functools.partial` of the
  module class) for 'module' entries. The same spec always returns the same
  object, so it hashes and caches well as a module field.
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


def _elementwise_entry(spec: str, what: str) -> tuple[Entry, dict[str, Any]]:
  name, kwargs = parse_spec(spec)
  e = entry(name)
  bound = e.bind(**kwargs)
  if e.kind != "elementwise":
    raise ValueError(
        f"{e.name} is a {e.kind} activation, not an elementwise function;"
        f" {what} is defined for elementwise activations only."
    )
  return e, bound


def derivative(spec: str) -> Callable[[Array], Array]:
  """The analytic derivative f'(x) of an elementwise spec, jitted."""
  e, bound = _elementwise_entry(spec, "derivative()")
  d = wrap.half_as_f32(lambda x: e.derivative(x, **bound))
  return jax.jit(lambda x: d(wrap.as_inexact(x)))


def kinks(spec: str) -> dict[float, float]:
  """{x: f'(x)} at every non-differentiable point of a spec."""
  name, kwargs = parse_spec(spec)
  e = entry(name)
  return dict(e.kinks(**e.bind(**kwargs)))


def describe(spec: str) -> Description:
  """The facts about a spec: range, monotonicity, smoothness, slopes, kinks.

  For 'module' entries they describe the activation at its initial
  parameters (RReLU: in evaluation mode).
  """
  name, kwargs = parse_spec(spec)
  e = entry(name)
  bound = e.bind(**kwargs)
  if e.facts is None:
    raise ValueError(f"{e.name} has no recorded facts; register it with facts=.")
  facts = e.facts if isinstance(e.facts, Facts) else e.facts(**bound)
  return Description(
      name=e.name,
      spec=canonical(spec),
      kind=e.kind,
      summary=e.summary,
      aliases=e.aliases,
      learnable=e.kind == "module",
      kinks=dict(e.kinks(**bound)),
      width_multiplier=e.width(**bound),
      **dataclasses.asdict(facts),
  )


def is_module(activation: Any) -> bool:
  """Whether `activation` is a flax.linen Module class or a partial of one."""
  import flax.linen as nn

  target = activation.func if isinstance(activation, functools.partial) else activation
  return isinstance(target, type) and issubclass(target, nn.Module)


def width_multiplier(activation: Any) -> int:
  """Pre-activation units that `activation` consumes per output unit.

  1 for elementwise functions; 2 for glu; k for maxout with k pieces. A layer
  followed by the activation must produce this many times its units.
  """
  if id(activation) in _WIDTHS:
    return _WIDTHS[id(activation)]
  if is_module(activation):
    # parent=None: an unbound instance, even when asked inside a model.
    return int(getattr(activation(parent=None), "width_multiplier", 1))
  return 1


def positive(v: float) -> bool:
  return v > 0


def nonnegative(v: float) -> bool:
  return v >= 0
