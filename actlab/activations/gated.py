"""Gated linear units: activations that halve the last axis.

glu is not elementwise: it splits its input's last axis into halves a and b
and returns a * sigmoid(b). A layer followed by glu must therefore produce
twice the units the next layer should see; `width_multiplier(get('glu'))` is 2
and `actlab.models.LeNet5` widens its layers accordingly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from actlab.activations import numerics as nx
from actlab.activations.metadata import Facts, inf
from actlab.activations.registry import Entry, register

Array = jax.Array


def _halves(x: Array) -> tuple[Array, Array]:
  if x.ndim == 0 or x.shape[-1] % 2:
    raise ValueError(
        f"glu splits the last axis into two halves; it needs an even size,"
        f" got shape {x.shape}."
    )
  return jnp.split(x, 2, axis=-1)


def glu(x: Array) -> Array:
  """a * sigmoid(b) for x = [a, b] split on the last axis (Dauphin et al.,
  2017, 'Language modeling with gated convolutional networks')."""
  a, b = _halves(x)
  if nx.fast(b):
    return a * jax.nn.sigmoid(b)
  e, r = nx.logistic_parts(b)
  return a * nx.sigmoid_from(b, e, r)


def _glu_jvp(x: Array, t: Array) -> tuple[Array, Array]:
  a, b = _halves(x)
  ta, tb = _halves(t)
  if nx.fast(b):
    s = jax.nn.sigmoid(b)
    return a * s, ta * s + nx.finite(a) * (s * (1.0 - s)) * tb
  e, r = nx.logistic_parts(b)
  s = nx.sigmoid_from(b, e, r)
  # d/db = a sigmoid(b) sigmoid(-b); the clamp makes it 0, not NaN, where an
  # infinite a meets a saturated gate.
  return a * s, ta * s + nx.finite(a) * (e * r * r) * tb


register(Entry(
    "glu", glu, kind="gated", jvp=_glu_jvp, width=lambda: 2,
    summary="a * sigmoid(b), x = [a, b] on the last axis",
    facts=Facts((-inf, inf), False, "Cinf", True, inf, inf, "none"),
))
