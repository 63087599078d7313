"""Config -> the run's objects: the one place where names become things.

Every choice a config can make is a key of one table here: `MODELS`,
`OPTIMIZERS`, `INITIALIZERS`, `DATASETS` (and `data.SCALINGS`). Validation
(`actlab.config.validate`) accepts exactly these keys, so adding an entry to a
table is all it takes to make a new choice available from the command line:

>>> from actlab import build
>>> build.OPTIMIZERS["lion"] = lambda c: optax.lion(c.learning_rate)  # doctest: +SKIP

`make_model`, `make_optimizer` and `create_train_state` turn a config into a
model, an optax transformation and an initial `TrainState`; the last also
takes a research project's own model and optax transformation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from actlab import activations, data, models
from actlab import steps as steps_lib

Array = jax.Array
Config = ml_collections.ConfigDict

# ----------------------------------------------------------------------------
# The tables
# ----------------------------------------------------------------------------


def _lenet5(config: Config, **common: Any) -> nn.Module:
  fast = {"auto": None, "on": True, "off": False}[config.get("fast_layers", "auto")]
  return models.LeNet5(fast_layers=fast, **common)


def _mlp(config: Config, **common: Any) -> nn.Module:
  return models.MLP(depth=config.mlp_depth, width=config.mlp_width, **common)


# name -> (config, activation=, num_classes=, kernel_init=, dtype=) -> flax module
MODELS: dict[str, Callable[..., nn.Module]] = {"lenet5": _lenet5, "mlp": _mlp}

# name -> (config) -> optax transformation
OPTIMIZERS: dict[str, Callable[[Config], optax.GradientTransformation]] = {
  "adam": lambda c: optax.adam(c.learning_rate, b1=c.adam_b1, b2=c.adam_b2, eps=c.adam_eps),
  "adamw": lambda c: optax.adamw(
    c.learning_rate, b1=c.adam_b1, b2=c.adam_b2, eps=c.adam_eps, weight_decay=c.weight_decay
  ),
  "sgd": lambda c: optax.sgd(c.learning_rate),
  "momentum": lambda c: optax.sgd(c.learning_rate, momentum=c.momentum),
}

# name -> flax initializer for every kernel
INITIALIZERS: dict[str, Callable[..., Array]] = {
  name: getattr(nn.initializers, name)()
  for name in (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
  )
}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """An image-classification dataset held in memory as uint8."""

  load: Callable[..., data.Split]  # (split, data_dir=, download=, archive=) -> Split
  image_shape: tuple[int, int, int]
  num_classes: int


# name -> Dataset
DATASETS: dict[str, Dataset] = {
  "cifar10": Dataset(data.load, data.cifar10.IMAGE_SHAPE, data.cifar10.NUM_CLASSES),
}


def choices(table: Mapping[str, Any]) -> tuple[str, ...]:
  """The names a config may use for `table` (what validation accepts)."""
  return tuple(table)


# ----------------------------------------------------------------------------
# Config -> model, optimizer, state
# ----------------------------------------------------------------------------


def make_model(config: Config, num_classes: int | None = None) -> nn.Module:
  """The model described by `config`; the activation is resolved here, once."""
  return MODELS[config.model](
    config,
    activation=activations.get(config.activation),
    num_classes=num_classes or DATASETS[config.get("dataset", "cifar10")].num_classes,
    kernel_init=INITIALIZERS[config.kernel_init],
    dtype=jnp.dtype(config.dtype),
  )


def make_optimizer(config: Config) -> optax.GradientTransformation:
  """The optax transformation named by `config.optimizer`."""
  return OPTIMIZERS[config.optimizer](config)


def create_train_state(
  config: Config,
  model: nn.Module,
  rng: Array,
  *,
  tx: optax.GradientTransformation | None = None,
  input_shape: tuple[int, ...] | None = None,
) -> steps_lib.TrainState:
  """Initialises `model`'s parameters (from the first half of `rng`) and the
  optimizer state of `tx` (default: the config's optimizer)."""
  tx = tx or make_optimizer(config)
  shape = input_shape or DATASETS[config.get("dataset", "cifar10")].image_shape
  init_rng, train_rng = jax.random.split(rng)
  params = model.init(init_rng, jnp.zeros((1, *shape), jnp.float32))["params"]
  zero = lambda: jnp.zeros((), jnp.int32)  # noqa: E731  (distinct buffers: donated)
  return steps_lib.TrainState(
    step=zero(),
    epoch=zero(),
    params=params,
    opt_state=tx.init(params),
    rng=jax.random.key_data(train_rng),
    skipped_steps=zero(),
    consecutive_skips=zero(),
    first_nonfinite_step=jnp.full((), -1, jnp.int32),
    nonfinite_kind=zero(),
    apply_fn=model.apply,
    tx=tx,
  )
