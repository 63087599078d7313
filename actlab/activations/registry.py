"""The activation registry: entries, `register`, `get` and `describe`.

An entry couples a primal formula with its analytic derivative. `get` binds
the parameters of a spec string once and returns a jitted function whose
`jax.custom_jvp` rule is the analytic derivative, so the value a model trains
with at a kink is the documented one, not whatever autodiff of the formula
happens to produce.

Three kinds of entry share the registry: 'elementwise' (pure functions that
drop into any model), 'gated' (pure functions that halve the last axis, such
as glu) and 'module' (flax.linen modules with parameters or randomness, which
`get` returns as a module factory).

`get` also accepts what a model can use directly (any callable, returned
unchanged; a flax Module class or factory, as a `ModuleFactory`), and
'module.path:attribute' specs, which import a user's module (`spec.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import keyword
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax

from actlab.activations import spec as specs
from actlab.activations import wrap
from actlab.activations.entries import KINDS, Entry
from actlab.activations.metadata import Description, Facts
from actlab.activations.params import Param, Value, nonnegative, positive  # noqa: F401
from actlab.activations.report import CheckError
from actlab.activations.spec import parse_spec  # noqa: F401  (public here too)

Array = jax.Array


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}
# What `get` built, by (id(entry), params); the entry is kept alive with it.
_BUILT: dict[tuple[int, tuple[tuple[str, Any], ...]], tuple[Entry, Callable]] = {}
# What 'module:attribute' specs resolved to, by (name, repr(params)).
_FROM_MODULES: dict[tuple[str, str], Any] = {}
# Width multipliers of the objects `get` returned, by identity.
_WIDTHS: dict[int, int] = {}
# The canonical spec of each object `built` returned, by identity.
_SPECS: dict[int, str] = {}


_TRUSTED: list[bool] = []
# ModuleFactory of each Module class or partial `get` was given, by identity
# (the same object back for the same argument, as for spec strings).
_FACTORIES: dict[int, tuple[Any, ModuleFactory]] = {}


class ModuleFactory(functools.partial):
  """A flax.linen Module class with its fields bound: what `get` returns for
  a learnable activation ('prelu', nn.PReLU).

  Called with keyword arguments only (`factory(name='prelu_1')`), it makes a
  Module, as `functools.partial` does; a model makes one per activation
  site. Called on an array inside a `@nn.compact` method, it makes one
  (auto-named, with its own parameters) and applies it, so it can be used
  like a function there.
  """

  def __call__(self, *args: Any, **kwargs: Any) -> Any:
    if not args or not _is_array_like(args[0]):
      return super().__call__(*args, **kwargs)
    fields = {k: v for k, v in kwargs.items() if k not in _CALL_ARGUMENTS}
    call = {k: v for k, v in kwargs.items() if k in _CALL_ARGUMENTS}
    try:
      return super().__call__(**fields)(*args, **call)
    except flax.errors.CallCompactUnboundModuleError:
      raise ValueError(
          f"{self.func.__name__} is a learnable activation: its parameters live in a"
          " model. Call it inside a flax.linen @nn.compact method (or a model's"
          " init/apply), pass it as a model's activation field, or use its Flax"
          " NNX version from actlab.nnx."
      ) from None


_CALL_ARGUMENTS = ("deterministic",)


def _is_array_like(x: Any) -> bool:
  return isinstance(x, (jax.Array, jax.core.Tracer)) or hasattr(x, "__array__")


def module_factory(activation: Any) -> ModuleFactory:
  """The ModuleFactory of a Module class or a keyword-only partial of one."""
  if isinstance(activation, ModuleFactory):
    return activation
  made = _FACTORIES.get(id(activation))
  if made is None or made[0] is not activation:
    if isinstance(activation, functools.partial):
      factory = ModuleFactory(activation.func, *activation.args, **activation.keywords)
    else:
      factory = ModuleFactory(activation)
    made = _FACTORIES[id(activation)] = (activation, factory)
  return made[1]


@contextlib.contextmanager
def trusted():
  """Within it, `register` skips its check: for actlab's own catalogue, whose
  every entry tests/test_activations.py runs through `check()`, so that
  importing actlab stays fast."""
  _TRUSTED.append(True)
  try:
    yield
  finally:
    _TRUSTED.pop()


def register(entry: Entry, *, override: bool = False, verify: bool = True) -> Entry:
  """Adds `entry` to the registry, so its name works in `get` and in configs.

  Names and aliases must be new; `override=True` replaces an entry of the
  same name (re-running a notebook cell). With `verify` (the default) an
  elementwise entry's derivative is first held against `jax.grad` of its
  formula on a wide grid (`check(entry, checks=CHEAP_CHECKS)`); a mismatch
  raises `CheckError` with the report. `check(entry)` runs every check.
  """
  if not isinstance(entry, Entry):
    raise TypeError(f"register() takes an Entry, got {type(entry).__name__}.")
  for key in (entry.name, *entry.aliases):
    _check_name(key)
    owner = key if key in _REGISTRY else _ALIASES.get(key)
    if owner is None or (override and owner == entry.name):
      continue
    if owner == entry.name:
      raise ValueError(
          f"activation name {key!r} is already registered; pass override=True to"
          " replace it (e.g. when re-running a notebook cell)."
      )
    raise ValueError(
        f"activation name {key!r} is already taken by {owner!r}; override=True"
        " replaces an entry of the same name only. Choose another name."
    )
  if verify and entry.kind == "elementwise" and not _TRUSTED:
    from actlab.activations.checks import CHEAP_CHECKS, check

    report = check(entry, checks=CHEAP_CHECKS)
    if not report.ok:
      raise CheckError(f"register({entry.name!r}) refused:\n{report}", report)
  old = _REGISTRY.pop(entry.name, None)
  if old is not None:
    for alias in old.aliases:
      _ALIASES.pop(alias, None)
    _FROM_MODULES.clear()
  _REGISTRY[entry.name] = entry
  for alias in entry.aliases:
    _ALIASES[alias] = entry.name
  return entry


def _check_name(name: str) -> None:
  if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
    raise ValueError(
        f"An activation name must be a Python identifier such as 'log_cosh',"
        f" got {name!r}."
    )
  import actlab.activations as package

  taken = getattr(package, "__dict__", {}).get(name)
  if taken is not None and name not in _REGISTRY and name not in _ALIASES:
    raise ValueError(
        f"activation name {name!r} would hide actlab.activations.{name}; choose"
        " another name."
    )


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
  """The entry for `name`: canonical, an alias, or 'module.path:attribute'."""
  if specs.split_module(name):
    return bound_entry(name)[0]
  key = _ALIASES.get(name, name)
  if key not in _REGISTRY:
    valid = names(include_aliases=True, kind="all")
    # 'Relu' means 'relu': a difference of case first, then spelling.
    close = [v for v in valid if v.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown activation {name!r}.{hint} Valid names: {', '.join(valid)}."
        " Your own: 'my_pkg.acts:my_fn' (a function or registered entry of an"
        " importable module)."
    )
  return _REGISTRY[key]


def _kind_of(obj: Any) -> str:
  if is_module(obj):
    return "a flax Module class"
  return f"a {type(obj).__name__!r} object" if not callable(obj) else "a plain callable"


def _module_target(name: str, spec: str) -> Any:
  """What 'module:attribute' names: a registered or unregistered Entry, or
  the attribute itself."""
  module, obj = specs.load_attribute(name, spec)
  if isinstance(obj, Entry):
    return obj
  for e in _REGISTRY.values():
    if any(obj is t for t in (e.fn, getattr(e.fn, "__wrapped__", None), e.module)):
      return e
  return obj


def built(e: Entry, params: dict[str, Any]) -> Callable[..., Any]:
  """The jitted function (or module factory) of `e` with `params` bound."""
  items = tuple(sorted(params.items()))
  key = (id(e), items)
  if key in _BUILT and _BUILT[key][0] is e:
    return _BUILT[key][1]
  if e.kind == "module":
    out = ModuleFactory(e.module, **params)
  else:
    build = wrap.elementwise if e.kind == "elementwise" else wrap.gated
    out = jax.jit(build(e, params))
  _BUILT[key] = (e, out)
  _WIDTHS[id(out)] = e.width(**params)
  _SPECS[id(out)] = specs.format_spec(e.name, params)
  return out


def get(activation: Any) -> Callable[..., Any]:
  """What a model calls, from a spec string or an object.

  - 'relu', 'leaky_relu(negative_slope=0.2)': a jitted function of one array
    for 'elementwise' and 'gated' entries, a flax.linen Module factory (a
    `ModuleFactory`: a `functools.partial` of the class that also applies
    the module when called on an array inside `@nn.compact`) for 'module'
    entries. The same spec always returns the same object, so it hashes
    and caches well as a module field.
  - 'my_pkg.acts:name' or 'my_pkg.acts:name(alpha=2.0)': imports the module
    (running its `register()` calls) and resolves `name`: an entry it
    registered or an `Entry`, as above; a flax Module class (parameters
    become its fields); a plain function (parameters are bound as keyword
    arguments), which must pass the cheap check (`CHEAP_CHECKS`, with
    `jax.grad` as its derivative) and is returned as it is.
  - a flax Module class or a partial of one (nn.PReLU): its
    `ModuleFactory`.
  - a callable (jax.nn.gelu, a Module instance): returned unchanged. An
    `Entry`: its jitted function.
  """
  if isinstance(activation, Entry):
    return _from_entry(activation, activation.bind())
  if not isinstance(activation, str):
    if is_module(activation):
      return module_factory(activation)
    if callable(activation):
      return activation
    raise ValueError(
        "An activation is a spec string ('relu', 'elu(alpha=0.5)',"
        " 'my_pkg.acts:log_cosh'), a callable or a flax Module class; got"
        f" {activation!r} ({type(activation).__name__})."
    )
  name, kwargs = parse_spec(activation)
  if not specs.split_module(name):
    e = entry(name)
    return built(e, e.bind(**kwargs))
  key = (name, repr(sorted(kwargs.items())))
  if key not in _FROM_MODULES:
    _FROM_MODULES[key] = _resolve(activation)
  return _FROM_MODULES[key]


def is_registered(e: Entry) -> bool:
  """Whether `e` itself (not just an entry of its name) is registered."""
  return _REGISTRY.get(e.name) is e


def _from_entry(e: Entry, bound: dict[str, Any]) -> Callable[..., Any]:
  if not is_registered(e) and e.kind == "elementwise":
    from actlab.activations.checks import CHEAP_CHECKS, check

    report = check(e, checks=CHEAP_CHECKS)
    if not report.ok:
      raise CheckError(f"Entry {e.name!r} failed its checks:\n{report}", report)
  return built(e, bound)


def _resolve(spec: str) -> Any:
  e, target = resolve(spec)
  if e is not None:
    return _from_entry(e, target)
  if is_module(target):
    return module_factory(target)
  if isinstance(target, nn.Module):
    return target
  if not callable(target):
    raise ValueError(
        f"{spec!r} is {_kind_of(target)}, not a callable activation. Point the spec"
        " at a function f(x), a registered Entry or a flax Module class."
    )
  from actlab.activations.checks import CHEAP_CHECKS, check

  report = check(target, checks=CHEAP_CHECKS, name=spec)
  if not report.ok:
    raise CheckError(f"{spec!r} failed its checks:\n{report}", report)
  return target


def resolve(spec: str) -> tuple[Entry, dict[str, Value]] | tuple[None, Any]:
  """What a spec names, unchecked: (entry, its bound parameters), or, for a
  'module:attribute' that is not an entry, (None, the attribute) with the
  spec's parameters bound by `functools.partial`."""
  name, kwargs = parse_spec(spec)
  if specs.split_module(name):
    target = _module_target(name, spec)
    if not isinstance(target, Entry):
      if kwargs and isinstance(target, nn.Module):
        raise ValueError(f"{spec!r} is a Module instance; it takes no parameters.")
      return None, functools.partial(target, **kwargs) if kwargs else target
    return target, target.bind(**kwargs)
  e = entry(name)
  return e, e.bind(**kwargs)


def bound_entry(spec: str | Entry) -> tuple[Entry, dict[str, Value]]:
  """The entry a spec names and its parameters, defaults filled in."""
  if isinstance(spec, Entry):
    return spec, spec.bind()
  e, bound = resolve(spec)
  if e is None:
    raise ValueError(
        f"{spec!r} is {_kind_of(bound)}, not a registered activation, so it has no"
        " recorded derivative, kinks or facts. Register it in its module"
        " (register(Entry(...))) to describe it, or pass it to check()."
    )
  return e, bound


def canonical(spec: str) -> str:
  """The spec with its canonical name and every parameter spelled out."""
  name, kwargs = parse_spec(spec)
  e, bound = resolve(spec)
  if e is None:
    return specs.format_spec(name, kwargs)
  return specs.format_spec(name if specs.split_module(name) else e.name, bound)


def _elementwise_entry(spec: str, what: str) -> tuple[Entry, dict[str, Any]]:
  e, bound = bound_entry(spec)
  if e.kind != "elementwise":
    raise ValueError(
        f"{e.name} is a {e.kind} activation, not an elementwise function;"
        f" {what} is defined for elementwise activations only."
    )
  return e, bound


def analytic(e: Entry, params: dict[str, Any]) -> Callable[[Array], Array]:
  """x -> f'(x) of an elementwise entry, half types computed in float32."""
  d = wrap.half_as_f32(lambda x: e.derivative(x, **params))
  return lambda x: d(wrap.as_inexact(x))


def derivative(spec: str) -> Callable[[Array], Array]:
  """The analytic derivative f'(x) of an elementwise spec, jitted."""
  return jax.jit(analytic(*_elementwise_entry(spec, "derivative()")))


def kinks(spec: str) -> dict[float, float]:
  """{x: f'(x)} at every non-differentiable point of a spec."""
  e, bound = bound_entry(spec)
  return dict(e.kinks(**bound))


def describe(spec: str) -> Description:
  """The facts about a spec: range, monotonicity, smoothness, slopes, kinks.

  For 'module' entries they describe the activation at its initial
  parameters (RReLU: in evaluation mode).
  """
  e, bound = bound_entry(spec)
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


def spec_of(activation: Any) -> str:
  """What a run records for an activation: the spec string `get` resolved it
  from ('elu(alpha=0.5)'), else 'module:qualified.name' of a function or
  class (with a partial's keyword arguments), else its repr."""
  if isinstance(activation, str):
    return activation
  if id(activation) in _SPECS:
    return _SPECS[id(activation)]
  if isinstance(activation, functools.partial) and not activation.args:
    return specs.format_spec(spec_of(activation.func), dict(activation.keywords))
  target = type(activation) if isinstance(activation, nn.Module) else activation
  module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
  if module and qualname and "<" not in qualname:
    return f"{module}:{qualname}"
  return repr(activation)


def is_module(activation: Any) -> bool:
  """Whether `activation` is a flax.linen Module class or a partial of one."""
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
  return int(getattr(activation, "width_multiplier", 1))
