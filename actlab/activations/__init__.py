"""Activation functions: a registry of pure JAX functions and flax modules.

>>> from actlab import activations
>>> relu = activations.get("relu")
>>> leaky = activations.get("leaky_relu(negative_slope=0.2)")
>>> prelu = activations.get("prelu(mode='channel')")  # a flax module factory

Every elementwise entry has an analytic derivative (`derivative(spec)`), used
as its `jax.custom_jvp` rule, documents its derivative at each kink
(`kinks(spec)`) and its analytic facts (`describe(spec)`). `names()` lists the
elementwise entries; `names(kind='all')` adds glu and the learnable modules.
The catalogue is in docs/activations.md.
"""

from actlab.activations import functions as _functions  # noqa: F401  (registers)
from actlab.activations.learnable import Maxout, PReLU, RReLU, SwishBeta
from actlab.activations.metadata import Description, Facts
from actlab.activations.registry import (
    Entry,
    Param,
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
    width_multiplier,
)

__all__ = [
    "Description",
    "Entry",
    "Facts",
    "Maxout",
    "PReLU",
    "Param",
    "RReLU",
    "SwishBeta",
    "canonical",
    "derivative",
    "describe",
    "entry",
    "get",
    "is_module",
    "kinks",
    "names",
    "parse_spec",
    "register",
    "width_multiplier",
]
