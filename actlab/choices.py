"""The names a config may choose, one table each: models, optimizers,
initialisers, datasets.

Validation (`actlab.config.validate`) accepts exactly these keys and
`actlab.build` turns them into objects, so a research project adds a choice
by registering it, in a module it names in `config.imports`:

>>> from actlab import choices
>>> lion = lambda c: optax.lion(c.optim.learning_rate)
>>> choices.register_optimizer("lion", lion)  # doctest: +SKIP
>>> choices.register_model("resmlp", lambda config, **common: ResMLP(**common))  # doctest: +SKIP

A model factory takes the config and the keyword arguments `activation`,
`num_classes`, `kernel_init` and `dtype`; an optimizer factory takes the
config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax

from actlab import data, models

Array = jax.Array
Config = ml_collections.ConfigDict


def _lenet5(config: Config, **common: Any) -> nn.Module:
  fast = {"auto": None, "on": True, "off": False}[config.model.fast_layers]
  return models.LeNet5(fast_layers=fast, **common)


def _mlp(config: Config, **common: Any) -> nn.Module:
  return models.MLP(depth=config.model.mlp_depth, width=config.model.mlp_width, **common)


# name -> (config, activation=, num_classes=, kernel_init=, dtype=) -> flax module
MODELS: dict[str, Callable[..., nn.Module]] = {"lenet5": _lenet5, "mlp": _mlp}

# name -> (config) -> optax transformation
OPTIMIZERS: dict[str, Callable[[Config], optax.GradientTransformation]] = {
  "adam": lambda c: optax.adam(
    c.optim.learning_rate, b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps
  ),
  "adamw": lambda c: optax.adamw(
    c.optim.learning_rate,
    b1=c.optim.b1,
    b2=c.optim.b2,
    eps=c.optim.eps,
    weight_decay=c.optim.weight_decay,
  ),
  "sgd": lambda c: optax.sgd(c.optim.learning_rate),
  "momentum": lambda c: optax.sgd(c.optim.learning_rate, momentum=c.optim.momentum),
}

# The fields of `config.optim` each built-in optimizer reads: what a run
# records and a resume compares (a changed adamw b1 is another run).
OPTIMIZER_FIELDS: dict[str, tuple[str, ...]] = {
  "adam": ("learning_rate", "b1", "b2", "eps"),
  "adamw": ("learning_rate", "b1", "b2", "eps", "weight_decay"),
  "sgd": ("learning_rate",),
  "momentum": ("learning_rate", "momentum"),
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


def _register(table: dict[str, Any], what: str, name: str, value: Any, override: bool) -> Any:
  if not isinstance(name, str) or not name.isidentifier():
    raise ValueError(f"A {what} name must be a Python identifier such as 'resmlp', got {name!r}.")
  if name in table and not override and table[name] is not value:
    raise ValueError(
      f"{what} name {name!r} is already taken; choose another name, or pass override=True"
      " to replace it (e.g. when re-running a notebook cell)."
    )
  table[name] = value
  return value


def register_model(
  name: str, factory: Callable[..., nn.Module], *, override: bool = False
) -> Callable[..., nn.Module]:
  """Makes `config.model.name=name` build `factory(config, activation=...,
  num_classes=..., kernel_init=..., dtype=...)`."""
  return _register(MODELS, "model", name, factory, override)


def register_optimizer(
  name: str,
  factory: Callable[[Config], optax.GradientTransformation],
  *,
  fields: tuple[str, ...] = ("learning_rate",),
  override: bool = False,
) -> Callable[[Config], optax.GradientTransformation]:
  """Makes `config.optim.name=name` build `factory(config)`; `fields` are the
  `config.optim` fields it reads (recorded with the run, compared on resume)."""
  _register(OPTIMIZERS, "optimizer", name, factory, override)
  OPTIMIZER_FIELDS[name] = tuple(fields)
  return factory


def register_dataset(name: str, dataset: Dataset, *, override: bool = False) -> Dataset:
  """Makes `config.data.name=name` load `dataset.load(split, data_dir=...,
  download=..., archive=...)`."""
  return _register(DATASETS, "dataset", name, dataset, override)
