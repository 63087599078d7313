"""Gaussian expectations E[g(z)] and E[g(z1, z2)], z standard normal, in float64.

neural-tangents' `ElementwiseNumerical` integrates an activation against
one- and two-dimensional Gaussians with Gauss-Hermite quadrature on the
Cholesky factor (u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + s z2)), and warns
that it is not accurate for non-smooth activations: a kink inside the
support makes every global rule converge slowly. Here the same
parameterisation is integrated by composite Gauss-Legendre on panels of
width `PANEL` whose edges include every kink (the activation's declared
non-differentiable points, mapped into z), so each panel holds a smooth
piece and the rule converges geometrically. Every expectation is computed
with n and 2n nodes per panel; their difference is the error estimate,
and n doubles until it is below `RTOL` of E[|g|] (or `MAX_NODES` is
reached, and `QuadratureError` says so). The window [-Z, Z] widens until
the integrand at its ends is negligible, so growing activations
(exponential) are covered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

PANEL = 1.0
START_NODES = 8
MAX_NODES = 128
RTOL = 1e-11
# The window starts at +-Z0 and widens by WIDEN while the ends still matter.
Z0 = 8.0
WIDEN = 1.5
MAX_Z = 400.0
# Memory: a 2-D rule has (2 Z / PANEL * nodes)^2 points.
MAX_Z_2D = 40.0
MAX_NODES_2D = 32
_DENSITY = 1.0 / np.sqrt(2.0 * np.pi)


class QuadratureError(ArithmeticError):
  """A Gaussian expectation did not reach the requested accuracy."""


@functools.cache
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
  return np.polynomial.legendre.leggauss(n)


def _panel_nodes(edges: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
  """Nodes and weights of n-point Gauss-Legendre on each panel of `edges`
  (shape (..., P + 1)); returns arrays of shape (..., P * n)."""
  x, w = _legendre(n)
  lo, hi = edges[..., :-1, None], edges[..., 1:, None]
  half = 0.5 * (hi - lo)
  nodes = lo + half * (x + 1.0)
  weights = half * w
  shape = (*edges.shape[:-1], -1)
  return nodes.reshape(shape), weights.reshape(shape)


def _edges(z: float, breaks: np.ndarray) -> np.ndarray:
  """Panel edges on [-z, z]: a uniform grid through 0 plus `breaks`
  (shape (..., K)), sorted per row; out-of-window breaks sit on the ends."""
  count = int(np.ceil(z / PANEL))
  grid = np.linspace(-count * PANEL, count * PANEL, 2 * count + 1)
  breaks = np.clip(breaks, grid[0], grid[-1])
  grid = np.broadcast_to(grid, (*breaks.shape[:-1], grid.size))
  return np.sort(np.concatenate([grid, breaks], axis=-1), axis=-1)


def _to_2d(values: np.ndarray, count: int) -> np.ndarray:
  values = np.asarray(values, np.float64)
  return values.reshape(count, -1) if values.ndim > 1 else values.reshape(1, -1)


def expect(
    g: Callable[[np.ndarray], np.ndarray],
    breaks: Sequence[float] = (),
    *,
    count: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
  """(E[g_k(z)], error estimate) for k < count, z ~ N(0, 1).

  `g` maps nodes z (1-D float64) to `count` integrands stacked as
  (count, len(z)); `breaks` are the points (in z) where they are not smooth.
  """
  breaks_z = np.asarray(sorted(set(float(b) for b in breaks if np.isfinite(b))), np.float64)

  def integrate(z_max: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nodes, weights = _panel_nodes(_edges(z_max, breaks_z), n)
    values = _to_2d(g(nodes), count) * (weights * _DENSITY * np.exp(-0.5 * nodes**2))
    return values.sum(axis=1), np.abs(values).sum(axis=1), _ends(values, weights, n, -1)

  return _refine(integrate, MAX_Z, MAX_NODES)


def expect2(
    g: Callable[[np.ndarray, np.ndarray], np.ndarray],
    breaks: Sequence[float],
    c: float,
    *,
    count: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
  """(E[g_k(z1, c z1 + s z2)], error) with s = sqrt(1 - c^2), z1, z2 ~ N(0, 1).

  `g(x1, x2)` takes the two correlated standard normals, x1 of shape (R, 1)
  (the outer nodes) and x2 of shape (R, C), and returns (count, R, C);
  `breaks` are the points where it is not smooth
  in either argument (the activation's kinks scaled into z).
  """
  if not -1.0 <= c <= 1.0:
    raise ValueError(f"a correlation lies in [-1, 1], got {c}.")
  s = float(np.sqrt(max(0.0, 1.0 - c * c)))
  kinks = np.asarray(sorted(set(float(b) for b in breaks if np.isfinite(b))), np.float64)

  def integrate(z_max: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z1, w1 = _panel_nodes(_edges(z_max, kinks), n)
    if s > 0:
      # For each outer node, x2 = c z1 + s z2 crosses a kink k at z2 = (k - c z1) / s.
      inner = (kinks[None, :] - c * z1[:, None]) / s
    else:
      inner = np.zeros((z1.size, 0))
    z2, w2 = _panel_nodes(_edges(z_max, inner), n)
    x1 = z1[:, None]
    values = np.asarray(g(x1, c * x1 + s * z2), np.float64).reshape(count, *z2.shape)
    weight = (w1 * np.exp(-0.5 * z1**2))[:, None] * (w2 * np.exp(-0.5 * z2**2))
    values = values * (weight * _DENSITY**2)
    # Per unit area: divide by the weights of the other axis' nodes too.
    rule = w1[:, None] * w2
    edge = np.maximum(_ends(values, rule, n, -1), _ends(values, rule, n, -2))
    return values.sum(axis=(1, 2)), np.abs(values).sum(axis=(1, 2)), edge

  return _refine(integrate, MAX_Z_2D, MAX_NODES_2D)


def _ends(values: np.ndarray, weights: np.ndarray, n: int, axis: int) -> np.ndarray:
  """The largest |integrand x density| per unit weight among the nodes of
  the outermost panels along `axis` (a kink clipped onto the end makes an
  empty panel there, so a few panels are looked at): what the tails beyond
  the window could still add, per unit length."""
  size = values.shape[axis]
  k = min(size // 2, 3 * n)
  idx = np.r_[0:k, size - k:size]
  v = np.abs(np.take(values, idx, axis=axis))
  w = np.broadcast_to(weights, values.shape[1:])
  w = np.take(w, idx, axis=axis if axis < 0 else axis - 1)
  with np.errstate(divide="ignore", invalid="ignore"):
    per = np.where(w > 0, v / np.where(w > 0, w, 1.0), 0.0)
  return per.reshape(per.shape[0], -1).max(axis=1)


def _refine(integrate, max_z: float, max_nodes: int) -> tuple[np.ndarray, np.ndarray]:
  """Widens the window, then doubles the nodes until n and 2n agree."""
  z_max = Z0
  with np.errstate(over="ignore", invalid="ignore", under="ignore"):
    while True:
      total, scale, ends = integrate(z_max, START_NODES)
      if not np.all(np.isfinite(total)):
        return total, np.full_like(total, np.inf)
      # The integrand at the window's ends, per unit length, is what the tails
      # beyond them could still add (they fall off at least like a Gaussian).
      if np.all(ends <= 1e-3 * RTOL * np.maximum(scale, 1e-300)) or z_max >= max_z:
        break
      z_max = min(max_z, z_max * WIDEN)
    n, coarse = START_NODES, total
    while True:
      fine, scale, _ = integrate(z_max, 2 * n)
      error = np.abs(fine - coarse)
      if np.all(error <= RTOL * np.maximum(scale, 1e-300)) or 2 * n >= max_nodes:
        return fine, error / np.maximum(scale, 1e-300)
      n, coarse = 2 * n, fine
