"""Activation functions as pure, jit-compiled JAX functions.

>>> from actlab import activations
>>> relu = activations.get("relu")
>>> leaky = activations.get("leaky_relu(negative_slope=0.2)")

Every entry has an analytic derivative (`derivative(spec)`), used as its
`jax.custom_jvp` rule, and documents its derivative at each kink
(`kinks(spec)`).
"""

from actlab.activations import functions as _functions  # noqa: F401  (registers)
from actlab.activations.registry import (
    Entry,
    Param,
    canonical,
    derivative,
    entry,
    get,
    kinks,
    names,
    parse_spec,
    register,
)

__all__ = [
    "Entry",
    "Param",
    "canonical",
    "derivative",
    "entry",
    "get",
    "kinks",
    "names",
    "parse_spec",
    "register",
]
