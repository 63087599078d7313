"""Flax NNX versions of the models and the learnable activations.

>>> from flax import nnx
>>> from actlab import nnx as anx
>>> model = anx.LeNet5("prelu", rngs=nnx.Rngs(0))   # 697,046 + 226 PReLU slopes
>>> model = anx.MLP("elu(alpha=0.5)", in_features=3072, depth=4, rngs=nnx.Rngs(0))

NNX modules own their parameters, so they are made with their sizes known:
`PReLU(features)` and `SwishBeta(features)` need the number of channels
(modes 'channel'; 'shared' needs none; 'element' takes the full per-example
shape). The models make one activation module per site from the same
`activation` values the flax.linen models take: a spec string ('relu',
'prelu(mode="shared")', 'my_pkg.acts:fn'), a function of one array, one of
actlab's learnable classes (flax.linen or NNX), or a factory
`f(features, rngs) -> nnx.Module` for a module of your own. Parameter
counts, layer shapes and formulas match `actlab.models` (the learnable
formulas are shared with `actlab.activations.learnable`).

Training is plain NNX: `nnx.Optimizer(model, tx, wrt=nnx.Param)` and
`nnx.value_and_grad` inside `nnx.jit`. `rrelu` draws its training slopes
from the 'rrelu' stream of the `nnx.Rngs` given to the model (or 'default').
`train_step_with_diagnostics` is the same step returning the per-layer
record of `actlab.diagnostics` (gradient and update norms, dL/dz at every
activation site, pre-activation statistics, dead and saturated fractions),
each site measured with the activation it applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from actlab import activations, diagnostics, models
from actlab.activations import learnable

Array = jax.Array


def _shape(features: int | Sequence[int], mode: str) -> tuple[int, ...]:
  if mode == "shared":
    return ()
  if mode == "channel":
    if not isinstance(features, int):
      raise ValueError(f"mode 'channel' takes the number of channels, got {features!r}.")
    return (features,)
  if mode == "element":
    return (features,) if isinstance(features, int) else tuple(features)
  raise ValueError(f"mode must be one of {learnable.MODES}, got {mode!r}.")


class PReLU(nnx.Module):
  """x for x >= 0, a * x below with `a` learned (He et al., 2015): NNX
  version of `actlab.activations.PReLU`, one slope shared, per channel (the
  last axis, `features` of them) or per element (`features` = the shape of
  one example)."""

  def __init__(
    self,
    features: int | Sequence[int] = (),
    mode: str = "channel",
    init_slope: float = 0.25,
    *,
    rngs: nnx.Rngs | None = None,
  ):
    del rngs  # deterministic initial value
    self.mode = mode
    self.alpha = nnx.Param(jnp.full(_shape(features, mode), init_slope, jnp.float32))

  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    del deterministic  # the same function in training and evaluation
    return learnable.prelu_formula(x, self.alpha[...])


class SwishBeta(nnx.Module):
  """x * sigmoid(beta x) with beta learned (Ramachandran et al., 2017): NNX
  version of `actlab.activations.SwishBeta`."""

  def __init__(
    self,
    features: int | Sequence[int] = (),
    mode: str = "shared",
    init_beta: float = 1.0,
    *,
    rngs: nnx.Rngs | None = None,
  ):
    del rngs
    self.mode = mode
    self.beta = nnx.Param(jnp.full(_shape(features, mode), init_beta, jnp.float32))

  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    del deterministic
    return learnable.swish_beta_formula(x, self.beta[...])


class Maxout(nnx.Module):
  """The max over groups of k consecutive units of the last axis (Goodfellow
  et al., 2013): the layer before it is k times wider."""

  def __init__(self, features: Any = None, k: int = 2, *, rngs: nnx.Rngs | None = None):
    del features, rngs  # no parameters of its own
    self.k = k

  @property
  def width_multiplier(self) -> int:
    return self.k

  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    del deterministic
    return learnable.maxout_formula(x, self.k)


class RReLU(nnx.Module):
  """Randomized leaky ReLU (Xu et al., 2015): slope ~ U(lower, upper) per
  element in training (`deterministic=False`, keys from the 'rrelu' stream of
  `rngs`), (lower + upper) / 2 in evaluation."""

  def __init__(
    self,
    features: Any = None,
    lower: float = 1.0 / 8.0,
    upper: float = 1.0 / 3.0,
    *,
    rngs: nnx.Rngs | None = None,
  ):
    del features
    self.lower, self.upper = lower, upper
    self.rngs = rngs["rrelu"].fork() if rngs is not None else nnx.data(None)

  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    key = None
    if not deterministic:
      if self.rngs is None:
        raise ValueError("RReLU in training draws slopes: make it with rngs=nnx.Rngs(...).")
      key = self.rngs()
    return learnable.rrelu_formula(x, self.lower, self.upper, key)


# The NNX class of each of actlab's flax.linen learnable activations.
_NNX_OF: dict[type, type] = {
  learnable.PReLU: PReLU,
  learnable.SwishBeta: SwishBeta,
  learnable.Maxout: Maxout,
  learnable.RReLU: RReLU,
}
# The linen field names that the NNX constructors spell the same way.
_FIELDS = {
  PReLU: ("mode", "init_slope"),
  SwishBeta: ("mode", "init_beta"),
  Maxout: ("k",),
  RReLU: ("lower", "upper"),
}


def site_factory(activation: Any) -> Callable[[int, nnx.Rngs], Any]:
  """(features, rngs) -> what one activation site applies: a function of
  one array, or a new NNX module with its own parameters.

  `activation` is a spec string, a function, one of actlab's learnable
  classes (flax.linen, or their `get()` factories, or NNX), or a factory
  `f(features, rngs)` returning an nnx.Module.
  """
  resolved = models.resolve_activation(activation)
  if isinstance(resolved, type) and issubclass(resolved, nnx.Module):
    return lambda features, rngs: resolved(features, rngs=rngs)
  if activations.is_module(resolved):
    cls = getattr(resolved, "func", resolved)
    keywords = dict(getattr(resolved, "keywords", {}))
    target = _NNX_OF.get(cls)
    if target is None:
      raise ValueError(
        f"{cls.__module__}.{cls.__qualname__} is a flax.linen Module; NNX models take"
        " actlab's learnable activations (prelu, swish_beta, maxout, rrelu), a"
        " function, or a factory f(features, rngs) -> nnx.Module. Wrap a linen"
        " module with flax.nnx.bridge.ToNNX in such a factory."
      )
    unknown = set(keywords) - set(_FIELDS[target])
    if unknown:
      raise ValueError(f"{target.__name__} has no field {sorted(unknown)}.")
    return lambda features, rngs: target(features, **keywords, rngs=rngs)
  if isinstance(resolved, nn.Module):
    raise ValueError(
      f"{type(resolved).__name__}(...) is a flax.linen Module instance; pass its"
      " class, a spec string or an NNX factory to an NNX model."
    )
  if _takes_rngs(resolved):
    return resolved
  return lambda features, rngs: resolved


def _takes_rngs(f: Callable[..., Any]) -> bool:
  """Whether `f` is a factory f(features, rngs) rather than an activation
  f(x): it says so by naming a parameter `rngs`."""
  try:
    return "rngs" in inspect.signature(f).parameters
  except (TypeError, ValueError):
    return False


def _width(site: Any) -> int:
  if isinstance(site, nnx.Module):
    return int(getattr(site, "width_multiplier", 1))
  return activations.width_multiplier(site)


class _Probe:
  """What a diagnosed forward pass records at each activation site: the
  pre-activation z (after adding `perturbations[site]`, zeros whose
  gradient is dL/dz) and the activation applied to it."""

  def __init__(self, perturbations: Mapping[str, Array] | None):
    self.perturbations = perturbations
    self.preactivations: dict[str, Array] = {}
    self.sites: dict[str, Any] = {}


# Set only while `train_step_with_diagnostics` traces the model; a plain
# forward pass never sees a probe, so it computes exactly what it did before.
_PROBE: contextvars.ContextVar[_Probe | None] = contextvars.ContextVar(
  "actlab_nnx_probe", default=None
)


@contextlib.contextmanager
def _probing(perturbations: Mapping[str, Array] | None) -> Iterator[_Probe]:
  probe = _Probe(perturbations)
  token = _PROBE.set(probe)
  try:
    yield probe
  finally:
    _PROBE.reset(token)


def _apply(owner: nnx.Module, name: str, z: Array, train: bool) -> Array:
  """Applies the activation site `owner.act_<name>` to z."""
  site = getattr(owner, f"act_{name}")
  probe = _PROBE.get()
  if probe is not None:
    if name in probe.preactivations:
      raise ValueError(f"two activation sites are named {name!r}; diagnostics need distinct names.")
    if probe.perturbations is not None:
      z = z + probe.perturbations[name]
    probe.preactivations[name] = z
    probe.sites[name] = site
  if isinstance(site, nnx.Module):
    return site(z, deterministic=not train)
  return site(z)


def _sites(owner: nnx.Module, activation: Any, names_and_features, rngs: nnx.Rngs) -> int:
  """Makes one activation site per (name, features) as owner.act_<name>;
  returns the width multiplier (the same for every site)."""
  make = site_factory(activation)
  widths = set()
  for name, features in names_and_features:
    site = make(features, rngs)
    setattr(owner, f"act_{name}", site)
    widths.add(_width(site))
  (k,) = widths or {1}
  return k


class LeNet5(nnx.Module):
  """The tutorial's LeNet5 in Flax NNX, as `actlab.models.LeNet5`: Conv
  6@5x5 same -> pool -> Conv 16@5x5 same -> pool -> Conv 120@5x5 same ->
  flatten -> Dense 84 -> Dense num_classes; 697,046 parameters for 32x32x3
  images (plus any the activation learns). `__call__(x, train=False)` takes
  NHWC batches of `image_size` images."""

  def __init__(
    self,
    activation: Any = "relu",
    *,
    num_classes: int = 10,
    image_size: tuple[int, int] = (32, 32),
    channels: int = 3,
    kernel_init: Callable[..., Array] = models.KERAS_KERNEL_INIT,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    k = _sites(
      self, activation, [("conv2d", 6), ("conv2d_1", 16), ("conv2d_2", 120), ("dense", 84)], rngs
    )
    conv = functools.partial(
      nnx.Conv, kernel_size=(5, 5), padding="SAME", kernel_init=kernel_init, dtype=dtype, rngs=rngs
    )
    self.conv2d = conv(channels, 6 * k)
    self.conv2d_1 = conv(6, 16 * k)
    self.conv2d_2 = conv(16, 120 * k)
    h, w = (s // 4 for s in image_size)
    dense = functools.partial(nnx.Linear, kernel_init=kernel_init, dtype=dtype, rngs=rngs)
    self.dense = dense(h * w * 120, 84 * k)
    self.dense_1 = dense(84, num_classes)
    self.image_shape = (*image_size, channels)
    self.dtype = dtype

  def __call__(self, x_BxHxWxC: Array, train: bool = False) -> Array:
    models.check_image_batch("LeNet5", x_BxHxWxC, min_size=4)
    if tuple(x_BxHxWxC.shape[1:]) != self.image_shape:
      raise ValueError(
        f"this LeNet5 was made for images of shape {self.image_shape}, got a batch"
        f" of shape {x_BxHxWxC.shape}; pass image_size= and channels= when making it."
      )
    pool = lambda x: nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")  # noqa: E731
    x = x_BxHxWxC.astype(self.dtype)
    x = pool(_apply(self, "conv2d", self.conv2d(x), train))
    x = pool(_apply(self, "conv2d_1", self.conv2d_1(x), train))
    x = _apply(self, "conv2d_2", self.conv2d_2(x), train)
    x = _apply(self, "dense", self.dense(x.reshape((x.shape[0], -1))), train)
    return self.dense_1(x).astype(jnp.float32)


class MLP(nnx.Module):
  """A deep fully connected network on flattened inputs, as
  `actlab.models.MLP`: `depth` hidden layers of `width` units, each followed
  by the activation, then a linear output layer."""

  def __init__(
    self,
    activation: Any = "relu",
    *,
    in_features: int,
    depth: int = 10,
    width: int = 128,
    num_classes: int = 10,
    kernel_init: Callable[..., Array] = models.KERAS_KERNEL_INIT,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.depth = depth
    names = [models.layer_name(i) for i in range(depth)]
    k = _sites(self, activation, [(n, width) for n in names], rngs)
    dense = functools.partial(nnx.Linear, kernel_init=kernel_init, dtype=dtype, rngs=rngs)
    for i, name in enumerate(names):
      setattr(self, name, dense(in_features if i == 0 else width, width * k))
    setattr(self, models.layer_name(depth), dense(width if depth else in_features, num_classes))
    self.dtype = dtype

  def __call__(self, x: Array, train: bool = False) -> Array:
    x = x.reshape((x.shape[0], -1)).astype(self.dtype)
    for i in range(self.depth):
      name = models.layer_name(i)
      x = _apply(self, name, getattr(self, name)(x), train)
    return getattr(self, models.layer_name(self.depth))(x).astype(jnp.float32)


def count_params(model: nnx.Module) -> int:
  """Scalars in the model's nnx.Param variables."""
  return models.count_params(nnx.state(model, nnx.Param))


def train_step(model: nnx.Module, optimizer: nnx.Optimizer, images: Array, labels: Array) -> Array:
  """One Optax step on softmax cross-entropy; returns the loss. Wrap it in
  `nnx.jit` (as `jit_train_step` is)."""

  def loss_fn(model):
    logits = model(images, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return loss


jit_train_step = nnx.jit(train_step)


def train_step_with_diagnostics(
  model: nnx.Module,
  optimizer: nnx.Optimizer,
  images: Array,
  labels: Array,
  saturation_threshold: float = 0.01,
) -> tuple[Array, dict[str, dict[str, Array]]]:
  """`train_step` plus the per-layer record of `actlab.diagnostics`
  ({key: {layer: value}}, keys as `diagnostics.RECORD_KEYS`) for an NNX
  LeNet5 or MLP, or any NNX model whose `__call__(x, train)` applies its
  activation sites through these models. Layers are named as in the linen
  models ('conv2d', ..., 'dense_1'; 'layer_00', ...), and each site is
  measured with the activation it applies: the slope statistics (dead,
  near_dead, saturated, act_*) for plain functions, the others for learnable
  ones too. The update is the one `train_step` makes; wrap it in `nnx.jit`
  (as `jit_train_step_with_diagnostics` is, `saturation_threshold` static).
  """
  graphdef, state = nnx.split(model)

  def shapes(state):
    with _probing(None) as probe:
      nnx.merge(graphdef, state)(images, train=False)
    return probe.preactivations

  # Shapes only (no rng stream advances): zeros whose gradient is dL/dz.
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(shapes, state))
  sites: dict[str, Any] = {}

  def loss_fn(model, perturbations):
    with _probing(perturbations) as probe:
      logits = model(images, train=True)
    sites.update(probe.sites)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, probe.preactivations

  before = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  (loss, preactivations), (grads, dz) = nnx.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
    model, zeros
  )
  optimizer.update(model, grads)
  after = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  record = diagnostics.gradient_stats(before, nnx.to_pure_dict(grads), after)
  record.update(diagnostics.site_stats(preactivations, sites, saturation_threshold))
  record["backprop_norm"] = {name: diagnostics.l2_norm(g) for name, g in dz.items()}
  return loss, record


jit_train_step_with_diagnostics = nnx.jit(
  train_step_with_diagnostics, static_argnames="saturation_threshold"
)
