"""Models that take their activation as a dataclass field."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actlab import activations, diagnostics, layers
from actlab.activations import get as get_activation

Array = jax.Array
# A spec string, a function of one array, or a flax.linen Module class,
# factory or instance: what `ActivationSites` accepts.
Activation = str | Callable[..., Any] | nn.Module

# Keras's default initialisers, so the tutorial's run is reproduced as written.
KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()


class MaxPool(nn.Module):
  """2x2 max-pooling with stride 2 (Keras MaxPool2D defaults)."""

  window: int = 2

  @nn.compact
  def __call__(self, x_BxHxWxC: Array) -> Array:
    w = (self.window, self.window)
    return nn.max_pool(x_BxHxWxC, window_shape=w, strides=w, padding="VALID")


class Flatten(nn.Module):
  """Flattens all but the batch axis."""

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return x.reshape((x.shape[0], -1))


class LeNet5(nn.Module):
  """The tutorial's LeNet5 for 32x32x3 inputs; returns logits.

  Conv 6@5x5 same -> pool -> Conv 16@5x5 same -> pool -> Conv 120@5x5 same
  -> flatten -> Dense 84 -> Dense num_classes. With the defaults it has
  697,046 parameters, as the Keras model in the tutorial.

  The activation is a spec string, a function of one array, or a flax.linen
  Module class, factory or instance (see `ActivationSites`); a module is
  instantiated once per hidden layer as `prelu`, `prelu_1`, ... so each
  site has its own parameters. An activation that consumes several units per
  output (maxout with k pieces, glu) gets hidden layers
  `activation_width(activation)` times as wide; with k = 2 the
  model has 2 * 696,196 + 850 = 1,393,242 parameters.

  Inputs are batches in NHWC layout (B, H, W, C). A single image (H, W, C)
  or a channels-first batch is refused with the fix (`x[None]`,
  `x.transpose(0, 2, 3, 1)`) rather than misread.

  Attributes:
    activation: applied after every hidden layer: a spec string, a function,
      or a flax Module class, factory or instance (see `ActivationSites`).
    num_classes: width of the output layer.
    kernel_init: initialiser for every kernel (Keras's glorot_uniform).
    dtype: computation dtype (parameters stay float32).
    fast_layers: run the convolutions in the exact blocked formulations of
      `actlab.layers` (same parameters, same function up to the order of
      float sums); None = on XLA:CPU only, where they are faster. Cases they
      cannot compute exactly (per-element parameters, RReLU noise in
      training, sizes not divisible by 8) use the plain layers.
  """

  activation: Activation = get_activation("relu")
  num_classes: int = 10
  kernel_init: Callable[..., Array] = KERAS_KERNEL_INIT
  dtype: Any = jnp.float32
  fast_layers: bool | None = None

  @nn.compact
  def __call__(self, x_BxHxWxC: Array, train: bool = False) -> Array:
    """Logits for a batch; `train=True` only matters for stochastic
    activations (RReLU), which then need `rngs={'rrelu': key}`."""
    check_image_batch(type(self).__name__, x_BxHxWxC, min_size=4)
    k = activation_width(self.activation)
    conv = lambda features, name: nn.Conv(  # noqa: E731
        features * k,
        (5, 5),
        padding="SAME",
        kernel_init=self.kernel_init,
        dtype=self.dtype,
        name=name,
    )
    act = ActivationSites(self, self.activation, train)

    dense = lambda features, name: nn.Dense(  # noqa: E731
        features, kernel_init=self.kernel_init, dtype=self.dtype, name=name
    )

    x = x_BxHxWxC.astype(self.dtype)
    # init always traces the plain layers: the parameters are the same, and
    # layer_table/summary show the tutorial's shapes.
    if not self.is_initializing() and layers.use_blocked(
        self.fast_layers, act.activation, train, x.shape[1:3], levels=3
    ):
      blocked = lambda features, name: layers.BlockedConv(  # noqa: E731
          features * k, kernel_init=self.kernel_init, dtype=self.dtype, name=name
      )
      # Pre-activations in the blocked layout (B x H/2 x W/2 x 4 x C): the
      # activation sees the same values per channel, then pools exactly.
      z = blocked(6, "conv2d")(layers.space_to_depth(x))
      x = layers.group_max(act(z, "conv2d"))
      z = blocked(16, "conv2d_1")(layers.space_to_depth(x))
      x = layers.group_max(act(z, "conv2d_1"))
      z = blocked(120, "conv2d_2")(layers.space_to_depth(x))
      x = layers.BlockedDense(
          84 * k, kernel_init=self.kernel_init, dtype=self.dtype, name="dense"
      )(act(z, "conv2d_2"))
    else:
      x = MaxPool(name="max_pooling2d")(act(conv(6, "conv2d")(x), "conv2d"))
      x = MaxPool(name="max_pooling2d_1")(act(conv(16, "conv2d_1")(x), "conv2d_1"))
      x = act(conv(120, "conv2d_2")(x), "conv2d_2")
      x = dense(84 * k, "dense")(Flatten(name="flatten")(x))
    x = act(x, "dense")
    return dense(self.num_classes, "dense_1")(x).astype(jnp.float32)


class MLP(nn.Module):
  """A deep fully connected network on flattened inputs, for gradient studies.

  `depth` hidden layers of `width` units, each followed by the activation,
  then a linear output layer. Layers are named `layer_00`, `layer_01`, ...
  so that sorted names are forward order.

  Attributes:
    activation: applied after every hidden layer: a spec string, a function,
      or a flax Module class, factory or instance (see `ActivationSites`).
    depth: number of hidden layers.
    width: units per hidden layer.
    num_classes: width of the output layer.
    kernel_init: initialiser for every kernel.
    dtype: computation dtype (parameters stay float32).
  """

  activation: Activation = get_activation("relu")
  depth: int = 10
  width: int = 128
  num_classes: int = 10
  kernel_init: Callable[..., Array] = KERAS_KERNEL_INIT
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    act = ActivationSites(self, self.activation, train)
    k = act.width_multiplier
    x = x.reshape((x.shape[0], -1)).astype(self.dtype)
    for i in range(self.depth):
      name = layer_name(i)
      dense = nn.Dense(self.width * k, kernel_init=self.kernel_init, dtype=self.dtype, name=name)
      x = act(dense(x), name)
    out = nn.Dense(
        self.num_classes, kernel_init=self.kernel_init, dtype=self.dtype,
        name=layer_name(self.depth),
    )
    return out(x).astype(jnp.float32)


def check_image_batch(model: str, x: Any, min_size: int) -> None:
  """Refuses what a convolutional model would misread: a single image
  (H, W, C), which flax's Conv takes as unbatched and the flattening then
  splits into a wrong batch, and channels-first (NCHW) batches, whose
  3-pixel 'height' pools down to nothing."""
  shape = tuple(np.shape(x))
  if len(shape) == 3:
    raise ValueError(
        f"{model} takes a batch of images (B, H, W, C), got one image of shape"
        f" {shape}; add the batch axis: x[None] (or jnp.expand_dims(x, 0))."
    )
  if len(shape) != 4:
    raise ValueError(
        f"{model} takes a batch of images (B, H, W, C), got shape {shape}."
    )
  _, h, w, c = shape
  if min(h, w) < min_size:
    hint = (
        f" This looks like channels-first (NCHW) input; {model} takes channels"
        " last (NHWC): x.transpose(0, 2, 3, 1)."
        if h <= 4 and w > 4 and c > 4 else ""
    )
    raise ValueError(
        f"{model} needs images of at least {min_size}x{min_size} pixels (its two 2x2"
        f" poolings), got height {h} and width {w} in a batch of shape {shape}.{hint}"
    )


def layer_name(i: int) -> str:
  """Name of the MLP's layer `i` (0 = first hidden layer)."""
  return f"layer_{i:02d}"


class ActivationSites:
  """Applies a model's activation after each hidden layer; any model can use it.

  `activation` may be
  - a spec string ('relu', 'prelu(mode="shared")'), resolved once, here, by
    `actlab.activations.get`;
  - a plain function of one array (`jax.nn.gelu`), called as is;
  - a flax.linen Module class or factory (`nn.PReLU`, `functools.partial`
    of a class, what `activations.get` returns for 'prelu', 'maxout', ...),
    instantiated once per site;
  - a flax.linen Module instance, cloned once per site.
  Module sites are named after the class (its `layer_name` when it has one,
  else the lowercased class name): `prelu`, `prelu_1`, ..., so each site has
  its own parameters. `deterministic=not train` is passed only to modules
  whose `__call__` declares `deterministic`. Each site's pre-activation goes
  through `actlab.diagnostics.record_preactivation` under the name of the
  layer that produced it, with the activation applied there (diagnostics
  measure each site with its own activation).
  """

  def __init__(self, parent: nn.Module, activation: Any, train: bool):
    self.parent, self.train = parent, train
    self.activation = resolve_activation(activation)
    self.sites: list[str] = []

  @property
  def width_multiplier(self) -> int:
    """Pre-activation units the activation consumes per output unit."""
    return activation_width(self.activation)

  def __call__(self, z: Array, layer: str) -> Array:
    a = self.activation
    z = diagnostics.record_preactivation(self.parent, layer, z, activation=a)
    if isinstance(a, nn.Module):
      module = a.clone(parent=self.parent, name=self._site_name(type(a)))
    elif activations.is_module(a):
      module = a(name=self._site_name(getattr(a, "func", a)))
    else:
      return a(z)
    if _declares_deterministic(type(module)):
      return module(z, deterministic=not self.train)
    return module(z)

  def _site_name(self, cls: type) -> str:
    base = getattr(cls, "layer_name", None) or cls.__name__.lower()
    name = f"{base}_{len(self.sites)}" if self.sites else base
    # A Module instance held in a field is registered under the field's name.
    if name in {f.name for f in dataclasses.fields(self.parent)}:
      name = f"{base}_{len(self.sites)}"
    self.sites.append(name)
    return name


def resolve_activation(activation: Any) -> Any:
  """A spec string as `activations.get` resolves it; anything else unchanged."""
  if isinstance(activation, str):
    return activations.get(activation)
  if not callable(activation):
    raise TypeError(
      f"activation must be a spec string such as 'relu', a function of one array,"
      f" or a flax.linen Module class, factory or instance; got {activation!r}."
    )
  return activation


def activation_width(activation: Any) -> int:
  """How many times wider a layer must be for `activation` (maxout k, glu 2)."""
  activation = resolve_activation(activation)
  if isinstance(activation, nn.Module):
    return int(getattr(activation, "width_multiplier", 1))
  return activations.width_multiplier(activation)


@functools.cache
def _declares_deterministic(cls: type) -> bool:
  try:
    return "deterministic" in inspect.signature(cls.__call__).parameters
  except (TypeError, ValueError):
    return False


def count_params(params: Any) -> int:
  """Total number of scalars in a parameter pytree."""
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def layer_table(
    model: nn.Module, input_shape: Sequence[int]
) -> list[tuple[str, tuple[int, ...], int]]:
  """(layer name, output shape, parameter count) for each top-level layer.

  Computed with `jax.eval_shape`, so nothing is allocated or run.
  """

  order: list[str] = []

  def record(module: nn.Module, method_name: str) -> bool:
    # Runs while tracing, so it sees layers in call order; the returned
    # pytree's dicts are sorted by key and lose that order.
    if method_name == "__call__" and module.name and module.name not in order:
      order.append(module.name)
    return method_name == "__call__"

  def init(rng):
    x = jnp.zeros((1, *input_shape), jnp.float32)
    return model.init_with_output(rng, x, capture_intermediates=record)

  _, variables = jax.eval_shape(init, jax.random.key(0))
  params = variables.get("params", {})
  rows = []
  for name in order:
    (out,) = variables["intermediates"][name]["__call__"]
    rows.append((name, (None, *out.shape[1:]), count_params(params.get(name, {}))))
  return rows


def summary(model: nn.Module, input_shape: Sequence[int]) -> str:
  """A Keras-style summary: layer, output shape, parameter count, total."""
  rows = layer_table(model, input_shape)
  _, variables = jax.eval_shape(
      lambda r: model.init_with_output(r, jnp.zeros((1, *input_shape))),
      jax.random.key(0),
  )
  total = count_params(variables.get("params", {}))
  header = f"{'Layer':<22}{'Output Shape':<24}{'Param #':>10}"
  rule = "=" * len(header)
  lines = [f"Model: {type(model).__name__}", rule, header, rule]
  lines.append(f"{'input':<22}{str((None, *input_shape)):<24}{0:>10,}")
  for name, shape, n in rows:
    lines.append(f"{name:<22}{str(shape):<24}{n:>10,}")
  lines += [rule, f"Total params: {total:,}", rule]
  return "\n".join(lines)
