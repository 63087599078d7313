"""Registry entries as attributes of `actlab.activations`, as in jax.nn.

`activations.relu` is `activations.get("relu")`, the jitted function with its
analytic derivative as the custom JVP. An entry with parameters takes them
as arguments, `activations.leaky_relu(x, negative_slope=0.2)`, which is
`get("leaky_relu(negative_slope=0.2)")(x)`; Python values are bound when
the function is first called with them (each new value compiles once).
Float parameters may also be arrays or tracers: `jax.grad` and `jax.vmap`
over them work as for jax.nn.elu's alpha, compiled once for all values. A
learnable entry's attribute is its Module factory, `activations.prelu(mode="shared")`
an instance. Attributes are made on first
access, so an entry registered later is an attribute too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax

from actlab.activations import registry, wrap
from actlab.activations.entries import Entry
from actlab.activations.params import is_traced

# By canonical name: (the entry it was made from, the attribute).
_MADE: dict[str, tuple[Entry, Callable[..., Any]]] = {}
# By (id(entry), Python-valued parameters, array-valued names): the entry and
# its function of (x, *arrays), compiled once for every value of the arrays.
_WITH_ARRAYS: dict[tuple[Any, ...], tuple[Entry, Callable[..., Any]]] = {}


def attribute(name: str) -> Callable[..., Any]:
  """The attribute for a registered name or alias; ValueError if unknown."""
  e = registry.entry(name)
  made = _MADE.get(e.name)
  if made is None or made[0] is not e:
    made = _MADE[e.name] = (e, _make(e))
  return made[1]


def _make(e: Entry) -> Callable[..., Any]:
  defaults = registry.built(e, e.bind())
  if e.kind == "module":
    defaults.__doc__ = e.module.__doc__
    return defaults
  if not e.params:
    return defaults
  signature = inspect.Signature([
      inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
      *(inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
        for k, p in e.params.items()),
  ])

  def activation(*args: Any, **kwargs: Any) -> Any:
    call = signature.bind(*args, **kwargs).arguments
    x = call.pop("x")
    arrays = {k: v for k, v in call.items() if is_traced(v)}
    if not arrays:
      return registry.built(e, e.bind(**call))(x)
    return _with_arrays(e, call, arrays)(x, *arrays.values())

  activation.__name__ = activation.__qualname__ = e.name
  activation.__module__ = "actlab.activations"
  activation.__signature__ = signature  # type: ignore[attr-defined]
  params = ", ".join(f"{k}={p.default!r}" for k, p in e.params.items())
  activation.__doc__ = (
      f"{(e.fn.__doc__ or e.summary).strip()}\n\n"
      f"Parameters ({params}) are Python values, where"
      f" activations.{e.name}(x, **params) is activations.get('{e.name}(...)')(x),"
      " or arrays and tracers: float parameters can be differentiated by jax.grad"
      " and mapped by jax.vmap, as in jax.nn."
  )
  return activation


def _with_arrays(e: Entry, call: dict[str, Any], arrays: dict[str, Any]) -> Callable[..., Any]:
  """The function of (x, *arrays) for the array-valued parameters in `call`;
  the others are validated and bound as Python values."""
  for k, v in arrays.items():
    e.params[k].validate_array(e.name, k, v)
  fixed = e.bind(**{k: v for k, v in call.items() if k not in arrays})
  for k in arrays:
    fixed.pop(k)
  key = (id(e), tuple(sorted(fixed.items())), tuple(arrays))
  made = _WITH_ARRAYS.get(key)
  if made is None or made[0] is not e:
    made = _WITH_ARRAYS[key] = (e, jax.jit(wrap.with_array_params(e, fixed, tuple(arrays))))
  return made[1]
