"""Exact, faster formulations of LeNet5's layers for XLA:CPU.

XLA:CPU runs convolutions with few channels slowly (3 -> 6 channels at 32x32
reaches ~15 GFLOP/s). A k x k 'SAME' convolution at stride 1 computes the same
numbers as a convolution of the 2x2-blocked input (space-to-depth: H x W x C
-> H/2 x W/2 x 4C) with a kernel assembled from the original one, whose 4
output groups are the 4 positions of each 2x2 block of the output. That
convolution has 4x the channels on a quarter of the positions, and runs
several times faster.

The blocked output `z_Bxhxwx4xC` keeps the channel axis last, with the block
position on the axis before it (g = 2a + b for output pixel (2i + a, 2j + b)),
so an activation that acts on each position's channel vector alone
(elementwise functions, glu, maxout, per-channel PReLU) gives the same values
on it, and a following 2x2 max-pool is a max over axis -2. A dense layer after
a blocked layer takes the flattened blocked features with its kernel rows
permuted to match.

Parameters keep nn.Conv's and nn.Dense's names, shapes and initialisers
(`kernel` k x k x in x out, `bias`), so models built from these layers have the
same parameters and checkpoints as the plain ones; only the order of
floating-point sums differs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype

from actlab.activations import learnable

Array = jax.Array


def space_to_depth(x_BxHxWxC: Array) -> Array:
  """B x H x W x C -> B x H/2 x W/2 x 4C, channels ordered (row in block,
  column in block, channel)."""
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC.reshape(b, h // 2, 2, w // 2, 2, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)


def blocked_to_spatial(z_Bxhxwx4xC: Array) -> Array:
  """The blocked layout back to B x 2h x 2w x C (depth-to-space)."""
  b, h, w, _, c = z_Bxhxwx4xC.shape
  z = z_Bxhxwx4xC.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return z.reshape(b, 2 * h, 2 * w, c)


@functools.cache
def _blocked_indices(k: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
  """Index arrays that assemble the blocked kernel from a k x k one.

  Output pixel 2I + a reads input pixel 2I + a + p - r (r = k // 2), which is
  input block R = I + u - lo at row s within the block. So the blocked kernel
  tap (u, s) for output row a holds the original tap p = 2 (u - lo) + s - a + r
  when 0 <= p < k, and zero otherwise (index k points at a zero row).
  """
  r = k // 2
  lo, hi = -((-r) // 2), (r + 1) // 2  # blocks of padding before/after
  kb = lo + hi + 1
  u, s, a = np.meshgrid(np.arange(kb), np.arange(2), np.arange(2), indexing="ij")
  p = 2 * (u - lo) + s - a + r
  p = np.where((p >= 0) & (p < k), p, k)  # u x s x a
  rows = p[:, None, :, None, :, None]  # (u, v, s, t, a, b)
  cols = p[None, :, None, :, None, :]
  return rows, cols, (lo, hi)


def blocked_kernel(kernel_KxKxIxO: Array) -> tuple[Array, tuple[int, int]]:
  """The kb x kb x 4I x 4O kernel (and padding) of the blocked convolution.

  Input channels are ordered (s, t, i) as `space_to_depth` lays them out,
  output channels (a, b, o): the group g = 2a + b, then the channel.
  """
  k, k2, i, o = kernel_KxKxIxO.shape
  if k != k2 or k % 2 == 0:
    raise ValueError(f"blocked_kernel needs a square, odd kernel, got {kernel_KxKxIxO.shape}.")
  rows, cols, pad = _blocked_indices(k)
  w = jnp.pad(kernel_KxKxIxO, ((0, 1), (0, 1), (0, 0), (0, 0)))
  kb = rows.shape[0]
  w = w[rows, cols]  # u, v, s, t, a, b, i, o
  w = w.transpose(0, 1, 2, 3, 6, 4, 5, 7)
  return w.reshape(kb, kb, 4 * i, 4 * o), pad


@jax.custom_vjp
def group_max(z_Bxhxwx4xC: Array) -> Array:
  """Max over the 4 block positions: a 2x2 max-pool of the blocked layout.

  The gradient goes to the first maximum in row-major window order, as
  nn.max_pool's does, so ties (common after relu) are resolved the same way.
  """
  return jnp.max(z_Bxhxwx4xC, axis=-2)


def _group_max_fwd(z: Array) -> tuple[Array, Array]:
  return jnp.max(z, axis=-2), jnp.argmax(z, axis=-2)


def _group_max_bwd(first_max: Array, g: Array) -> tuple[Array]:
  groups = jax.lax.broadcasted_iota(first_max.dtype, (*g.shape[:-1], 4, g.shape[-1]), g.ndim - 1)
  hit = groups == first_max[..., None, :]
  return (jnp.where(hit, g[..., None, :], jnp.zeros((), g.dtype)),)


group_max.defvjp(_group_max_fwd, _group_max_bwd)


def flatten_blocked(z_Bxhxwx4xC: Array) -> Array:
  """Flattens a blocked layout in its own order (see `BlockedDense`)."""
  return z_Bxhxwx4xC.reshape(z_Bxhxwx4xC.shape[0], -1)


def blocked_rows(kernel_NxO: Array, spatial_HxWxC: tuple[int, int, int]) -> Array:
  """A dense kernel over H x W x C features, rows reordered for blocked ones."""
  h, w, c = spatial_HxWxC
  o = kernel_NxO.shape[-1]
  k = kernel_NxO.reshape(h // 2, 2, w // 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5)
  return k.reshape(h * w * c, o)


class BlockedConv(nn.Module):
  """A k x k 'SAME' nn.Conv (stride 1) that reads and writes blocked layouts.

  Takes `space_to_depth(x)` (B x H/2 x W/2 x 4C) and returns the convolution's
  pre-activations in the blocked layout B x H/2 x W/2 x 4 x features, equal
  to `nn.Conv(features, (k, k), padding='SAME')(x)` up to the order of sums.
  Its parameters are nn.Conv's: `kernel` k x k x C x features and `bias`.
  """

  features: int
  kernel_size: int = 5
  kernel_init: Callable[..., Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Array] = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, x_Bxhxwx4C: Array) -> Array:
    b, h, w, c4 = x_Bxhxwx4C.shape
    k = self.kernel_size
    kernel = self.param(
      "kernel", self.kernel_init, (k, k, c4 // 4, self.features), self.param_dtype
    )
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    x, kernel, bias = promote_dtype(x_Bxhxwx4C, kernel, bias, dtype=self.dtype)
    kernel_b, pad = blocked_kernel(kernel)
    y = jax.lax.conv_general_dilated(
      x,
      kernel_b,
      window_strides=(1, 1),
      padding=(pad, pad),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=self.precision,
    )
    return y.reshape(b, h, w, 4, self.features) + bias.reshape(1, 1, 1, 1, -1)


class BlockedDense(nn.Module):
  """nn.Dense over the flattened H x W x C features, fed a blocked layout.

  Takes B x H/2 x W/2 x 4 x C and computes what nn.Dense computes on the
  same features laid out B x H x W x C and flattened; its parameters are
  nn.Dense's (`kernel` HWC x features, rows in H x W x C order, `bias`).
  """

  features: int
  kernel_init: Callable[..., Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Array] = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, z_Bxhxwx4xC: Array) -> Array:
    _, h, w, _, c = z_Bxhxwx4xC.shape
    n = 4 * h * w * c
    kernel = self.param("kernel", self.kernel_init, (n, self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    x, kernel, bias = promote_dtype(flatten_blocked(z_Bxhxwx4xC), kernel, bias, dtype=self.dtype)
    kernel = blocked_rows(kernel, (2 * h, 2 * w, c))
    y = jax.lax.dot_general(x, kernel, (((1,), (0,)), ((), ())), precision=self.precision)
    return y + bias.reshape(1, -1)


def channelwise(activation: Any, train: bool) -> bool:
  """Whether `activation` gives the same values on a blocked layout.

  True when it acts on each position's channel vector (the last axis) alone,
  with parameters, if any, of shape () or (channels,): plain functions (the
  registry's are elementwise, or glu on the last axis), PReLU and Swish-beta
  in 'shared' or 'channel' mode, Maxout, RReLU in evaluation, flax's own
  nn.PReLU. False for per-element parameters (their shape is the layout's),
  RReLU in training (its noise is drawn in the layout's shape), and flax
  modules it does not know.
  """
  if isinstance(activation, nn.Module):
    module = activation
  else:
    target = getattr(activation, "func", activation)
    if not (isinstance(target, type) and issubclass(target, nn.Module)):
      return callable(activation)
    module = activation(parent=None)
  if isinstance(module, learnable.PReLU | learnable.SwishBeta):
    return module.mode in ("shared", "channel")
  if isinstance(module, learnable.RReLU):
    return not train
  return isinstance(module, learnable.Maxout | nn.PReLU)


def use_blocked(
  enabled: bool | None, activation: Any, train: bool, spatial_HxW: tuple[int, int], levels: int
) -> bool:
  """Whether a model should run its blocked layers.

  `enabled` None means on XLA:CPU only (where they were measured faster).
  Needs H and W divisible by 2**levels (one 2x2 blocking per level) and a
  `channelwise` activation; otherwise the plain layers compute the same.
  """
  if enabled is None:
    enabled = jax.default_backend() == "cpu"
  size = 2**levels
  fits = spatial_HxW[0] % size == 0 and spatial_HxW[1] % size == 0
  return bool(enabled) and fits and channelwise(activation, train)
