"""Activation functions: a registry of pure JAX functions and flax modules.

>>> from actlab import activations
>>> activations.relu(x)                          # like jax.nn.relu
>>> activations.leaky_relu(x, negative_slope=0.2)
>>> activations.get("elu(alpha=0.5)")            # spec strings, as in configs
>>> activations.get("my_pkg.acts:log_cosh")      # a user module's function
>>> activations.get(jax.nn.gelu) is jax.nn.gelu  # callables pass through
>>> activations.prelu(mode="shared")             # a flax module

Every registry entry is an attribute (listed by `dir()`, importable with
`from actlab.activations import relu`). Every elementwise entry has an
analytic derivative (`derivative(spec)`), used as its `jax.custom_jvp` rule,
documents its derivative at each kink (`kinks(spec)`) and its analytic facts
(`describe(spec)`). `check(...)` runs the checks the catalogue is held to on
any activation; `register(Entry(...))` adds one after the cheap part of them.
`names()` lists the elementwise entries; `names(kind='all')` adds glu and the
learnable modules. The catalogue is in docs/activations.md.
"""

from typing import Any

from actlab.activations import registry as _registry

with _registry.trusted():  # every built-in entry is checked by the test suite
  from actlab.activations import functions as _functions  # noqa: F401  (registers)
from actlab.activations import attributes as _attributes
from actlab.activations.checks import (
    ALL_CHECKS,
    CHEAP_CHECKS,
    CheckError,
    CheckReport,
    CheckResult,
    WorstPoint,
    check,
)
from actlab.activations.entries import Entry
from actlab.activations.learnable import Maxout, PReLU, RReLU, SwishBeta
from actlab.activations.metadata import Description, Facts
from actlab.activations.params import (
    Param,
    at_least,
    finite,
    nonnegative,
    positive,
    unit_interval,
)
from actlab.activations.registry import (
    canonical,
    derivative,
    describe,
    entry,
    get,
    is_module,
    kinks,
    names,
    parse_spec,
    register,
    spec_of,
    width_multiplier,
)
from actlab.activations.spec import import_modules

__all__ = [
    "ALL_CHECKS",
    "CHEAP_CHECKS",
    "CheckError",
    "CheckReport",
    "CheckResult",
    "Description",
    "Entry",
    "Facts",
    "Maxout",
    "PReLU",
    "Param",
    "RReLU",
    "SwishBeta",
    "WorstPoint",
    "at_least",
    "canonical",
    "check",
    "derivative",
    "describe",
    "entry",
    "finite",
    "get",
    "import_modules",
    "is_module",
    "kinks",
    "names",
    "nonnegative",
    "parse_spec",
    "positive",
    "register",
    "spec_of",
    "unit_interval",
    "width_multiplier",
]
# The catalogue's names too, so `from actlab.activations import *` brings relu.
__all__ += names(include_aliases=True, kind="all")


def __getattr__(name: str) -> Any:
  """A registry entry as an attribute: `activations.relu`, made on first use."""
  if name.startswith("__") or not name.isidentifier():
    raise AttributeError(f"module 'actlab.activations' has no attribute {name!r}")
  try:
    return _attributes.attribute(name)
  except ValueError as e:
    raise AttributeError(
        f"module 'actlab.activations' has no attribute {name!r}: {e}"
    ) from None


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(names(include_aliases=True, kind="all")))
