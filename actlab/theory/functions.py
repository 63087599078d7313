"""Any elementwise activation as float64 numpy functions f, f' and its kinks.

`elementwise(activation)` accepts what `actlab.activations.get` accepts and
refuses, with the reason, what signal propagation cannot treat as one
function of one number: gated entries (glu), maxout, learnable modules
whose parameters are not given, and bare flax Module classes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from actlab import activations
from actlab.activations import registry, wrap

NumpyFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Elementwise:
  """An activation as float64 numpy functions, with its non-smooth points."""

  name: str
  f: NumpyFn
  df: NumpyFn
  kinks: tuple[float, ...]
  # Whether f' is the registry's analytic derivative (else jax.grad of f).
  analytic_derivative: bool


# Inputs are padded to one of these sizes (larger ones go in chunks of the
# last), so each function compiles at most twice.
_SIZES = (1 << 12, 1 << 16)


def _float64(fn: Callable[[jax.Array], jax.Array]) -> NumpyFn:
  """fn evaluated by jax in float64 on a numpy array of any shape."""

  def run(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    flat = x.reshape(-1)
    size = _SIZES[0] if flat.size <= _SIZES[0] else _SIZES[1]
    chunks = max(1, -(-flat.size // size))
    padded = np.zeros(chunks * size)
    padded[: flat.size] = flat
    with jax.enable_x64(True):
      out = np.concatenate([
          np.asarray(fn(jnp.asarray(part, jnp.float64)), np.float64)
          for part in padded.reshape(chunks, size)
      ])
    return out[: flat.size].reshape(x.shape)

  return run


def _grad_of(fn: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
  return jax.jit(jax.vmap(jax.grad(lambda x: fn(x[None])[0])))


@functools.cache
def _from_spec(spec: str, given: bool) -> Elementwise:
  entry, bound = registry.resolve(spec)
  if entry is None:  # 'module:attribute' naming a plain function
    return _from_callable(bound, spec)
  if entry.kind == "gated":
    raise ValueError(
        f"{entry.name} is a gated activation: it halves its input's last axis, so"
        " a unit's output depends on two pre-activations and there is no one-variable"
        " map q -> E[f(sqrt(q) z)^2] to analyse. Signal propagation needs an"
        " elementwise activation."
    )
  if entry.kind == "module":
    return _from_module(spec, entry, bound, given)
  f = registry.built(entry, bound) if registry.is_registered(entry) else None
  if f is None:
    f = jax.jit(wrap.elementwise(entry, bound))
  df = jax.jit(registry.analytic(entry, bound))
  kinks = tuple(sorted(entry.kinks(**bound)))
  return Elementwise(registry.canonical(spec), _float64(f), _float64(df), kinks, True)


def _from_module(spec: str, entry: Any, bound: dict[str, Any], given: bool) -> Elementwise:
  if entry.width(**bound) != 1:
    raise ValueError(
        f"{entry.name} is not elementwise: each output is a max over"
        f" {entry.width(**bound)} pre-activations, whose joint law the one-variable"
        " Gaussian analysis does not cover. Use an elementwise activation."
    )
  if not given:
    params = ", ".join(f"{k}={p.default!r}" for k, p in entry.params.items())
    raise ValueError(
        f"{entry.name} has parameters that are learned or drawn during training, so"
        " its behaviour at initialisation depends on their values. Give them in the"
        f" spec, e.g. '{entry.name}({params})'; the analysis then uses the module"
        " at those initial values (evaluation mode)."
    )
  factory = registry.built(entry, bound)
  with jax.enable_x64(True):
    module = factory(parent=None)
    variables = module.init(jax.random.key(0), jnp.zeros((1, 1), jnp.float64))

  def f(x: jax.Array) -> jax.Array:
    return module.apply(variables, x.reshape(-1, 1)).reshape(x.shape)

  kinks = tuple(sorted(entry.kinks(**bound)))
  return Elementwise(
      registry.canonical(spec), _float64(jax.jit(f)), _float64(_grad_of(f)), kinks, False
  )


def _from_callable(fn: Callable[..., Any], name: str | None = None) -> Elementwise:
  if activations.is_module(fn):
    target = getattr(fn, "func", fn)
    raise ValueError(
        f"{getattr(target, '__name__', fn)!r} is a flax Module; its function at"
        " initialisation depends on its parameters. Pass the registry spec with the"
        " parameters given (e.g. 'prelu(init_slope=0.25)') or a plain function f(x)."
    )
  if not callable(fn):
    raise ValueError(
        "An activation is a spec string ('relu', 'elu(alpha=0.5)',"
        f" 'my_pkg.acts:fn') or a function f(x); got {fn!r}."
    )
  label = name or getattr(fn, "__name__", None) or repr(fn)
  return Elementwise(label, _float64(fn), _float64(_grad_of(fn)), (), False)


def elementwise(activation: Any) -> Elementwise:
  """`activation` (spec string, Entry or function of one array) as an
  `Elementwise`. Functions get jax.grad as their derivative and no declared
  kinks, so a kink away from the quadrature's panel edges costs accuracy,
  which the quadrature's own check then reports."""
  if isinstance(activation, Elementwise):
    return activation
  if isinstance(activation, str):
    _, given = registry.parse_spec(activation)
    return _from_spec(registry.canonical(activation), bool(given))
  if isinstance(activation, activations.Entry):
    if activation.kind != "elementwise":
      raise ValueError(f"{activation.name} is a {activation.kind} entry, not elementwise.")
    f = jax.jit(activations.get(activation))
    df = jax.jit(registry.analytic(activation, activation.bind()))
    kinks = tuple(sorted(activation.kinks(**activation.bind())))
    return Elementwise(activation.name, _float64(f), _float64(df), kinks, True)
  return _from_callable(activation)
