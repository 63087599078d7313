"""Config -> the run's objects: the one place where names become things.

Every choice a config can make is a key of one table here: `MODELS`,
`OPTIMIZERS`, `INITIALIZERS`, `DATASETS` (and `data.SCALINGS`). Validation
(`actlab.config.validate`) accepts exactly these keys, so adding an entry to a
table is all it takes to make a new choice available from the command line:

>>> from actlab import build
>>> build.OPTIMIZERS["lion"] = lambda c: optax.lion(c.optim.learning_rate)  # doctest: +SKIP

`make_model`, `make_optimizer` and `create_train_state` turn a config into a
model, an optax transformation and an initial `TrainState`; the last also
takes a research project's own model and optax transformation.
`in_memory_splits` and `load_tfds` turn a project's own arrays or a TFDS
name into the splits a run trains on, and `describe_parts` says in plain
values which parts a run took from its caller (recorded in config.json).
For the run itself, `make_mesh`, `load_splits`, `train_on_device` and
`eval_on_device` put the data on the devices, `make_preprocess` scales it,
and `compile_steps` jits `actlab.steps` for the mesh (`CompiledSteps`).
`run_parts` does all of that in one call: (config, the caller's parts) ->
`RunParts`, everything the training loop runs on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from actlab import activations, data, distributed
from actlab import choices as choices_lib
from actlab import config as config_lib
from actlab import steps as steps_lib

Array = jax.Array
Config = ml_collections.ConfigDict

# The tables live in actlab.choices (config validation reads them too);
# they are names of this module as well, as they always were.
MODELS, OPTIMIZERS, INITIALIZERS, DATASETS = (
  choices_lib.MODELS, choices_lib.OPTIMIZERS, choices_lib.INITIALIZERS, choices_lib.DATASETS
)
Dataset = choices_lib.Dataset
choices = choices_lib.choices


# ----------------------------------------------------------------------------
# Config -> model, optimizer, state
# ----------------------------------------------------------------------------


def make_model(config: Config, num_classes: int | None = None) -> nn.Module:
  """The model described by `config`; the activation is resolved here, once."""
  return MODELS[config.model.name](
    config,
    activation=activations.get(config.model.activation),
    num_classes=num_classes or DATASETS[config.data.name].num_classes,
    kernel_init=INITIALIZERS[config.model.kernel_init],
    dtype=jnp.dtype(config.model.dtype),
  )


def make_optimizer(config: Config) -> optax.GradientTransformation:
  """The optax transformation named by `config.optim.name`."""
  return OPTIMIZERS[config.optim.name](config)


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
  shape = input_shape or DATASETS[config.data.name].image_shape
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
    apply_fn=apply_fn(model),
    tx=tx,
  )


@dataclasses.dataclass(frozen=True)
class _WithoutTrain:
  """`model.apply` for a model whose `__call__` takes no `train` argument."""

  apply: Callable[..., Any]

  def __call__(self, variables: Any, *args: Any, train: bool = False, **kwargs: Any) -> Any:
    del train
    return self.apply(variables, *args, **kwargs)


def apply_fn(model: nn.Module) -> Callable[..., Any]:
  """`model.apply`, taking `train=` whether or not the model's `__call__` does
  (actlab's models do; a research project's two-layer network need not)."""
  try:
    takes_train = "train" in inspect.signature(type(model).__call__).parameters
  except (TypeError, ValueError):
    takes_train = True
  return model.apply if takes_train else _WithoutTrain(model.apply)


# ----------------------------------------------------------------------------
# A research project's own data and parts
# ----------------------------------------------------------------------------

# {"train": (images, labels), "eval": (images, labels)[, "test": ...]} or
# (train, eval[, test]); images (N, H, W, C), integer labels (N,).
InMemoryData = Mapping[str, Any] | Sequence[Any]
SPLIT_ROLES = ("train", "eval", "test")


def _split(role: str, pair: Any) -> data.Split:
  try:
    images, labels = pair
  except (TypeError, ValueError):
    raise TypeError(
      f"data[{role!r}] must be a pair (images, labels), got {type(pair).__name__}."
    ) from None
  images, labels = np.asarray(images), np.asarray(labels)
  if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels) or not len(labels):
    raise ValueError(
      f"data[{role!r}]: expected images (N, height, width, channels) and labels (N,)"
      f" with N > 0, got shapes {images.shape} and {labels.shape}."
    )
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
      f"data[{role!r}]: labels must be integers (class indices), got {labels.dtype}."
    )
  return data.Split(images, labels.astype(np.int32))


def in_memory_splits(arrays: InMemoryData) -> tuple[data.Split, data.Split, data.Split | None]:
  """(train, eval, test or None) from a project's own arrays.

  `arrays` is `{"train": (images, labels), "eval": (images, labels)}` (with
  an optional `"test"`, evaluated once at the epoch selected on eval) or the
  tuple `(train, eval[, test])`. Images are used as given under
  `config.data.input_scaling="raw"` ("unit" divides by 255; "standardize" uses
  the training images' channel statistics).
  """
  if isinstance(arrays, Mapping):
    unknown = sorted(set(arrays) - set(SPLIT_ROLES))
    if unknown or "train" not in arrays or "eval" not in arrays:
      raise ValueError(
        f"data has the keys {sorted(arrays)}; expected 'train' and 'eval' (and optionally 'test')."
      )
    pairs = [arrays.get(role) for role in SPLIT_ROLES]
  else:
    pairs = list(arrays) + [None]
    if len(pairs) not in (3, 4):
      raise ValueError(f"data as a sequence is (train, eval[, test]); got {len(pairs) - 1} items.")
  train, evals, test = (
    _split(role, pair) if pair is not None else None for role, pair in zip(SPLIT_ROLES, pairs)
  )
  shapes = {s.images.shape[1:] for s in (train, evals, test) if s is not None}
  if len(shapes) > 1:
    raise ValueError(f"data: the splits' images differ in shape: {sorted(shapes)}.")
  return train, evals, test


def load_tfds(
  name: str, split: str, data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> data.Split:
  """An image-classification split of any TFDS dataset with `image` and
  `label` features, read whole into memory (CIFAR-10: `data.load`)."""
  if name == "cifar10":
    return data.load(split, data_dir, download=download)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  if download:
    tfds.builder(name, data_dir=data_dir).download_and_prepare()
  source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  records = [source[i] for i in range(len(source))]
  if not records:
    raise data.SplitError(f"The split {split!r} of {name} selects no examples.")
  return data.Split(
    np.stack([np.asarray(r["image"]) for r in records]),
    np.asarray([r["label"] for r in records], np.int32),
  )


def num_classes_of(*labels: np.ndarray) -> int:
  """The number of classes `labels` need: the largest label + 1."""
  return int(max(int(np.max(y)) for y in labels)) + 1


def _digest(*arrays: np.ndarray) -> str:
  h = hashlib.sha256()
  for a in arrays:
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()[:16]


def _state_kinds(tree: Any) -> str:
  """`'ScaleByAdamState, EmptyState'`: the node types of an optimizer state."""
  if isinstance(tree, (tuple, list)) and not hasattr(tree, "_fields"):
    return ", ".join(filter(None, (_state_kinds(t) for t in tree)))
  return type(tree).__name__


def _plain(value: Any) -> Any:
  """A model field as a JSON value that is the same in every process: numbers
  and strings as they are, callables by `activations.spec_of`, without ids."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (tuple, list)):
    return [_plain(v) for v in value]
  if callable(value) or isinstance(value, nn.Module):
    return re.sub(r" at 0x[0-9a-f]+", "", activations.spec_of(value))
  return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def model_fields(model: nn.Module) -> dict[str, Any]:
  """A flax module's dataclass fields (its activation as a spec), as recorded."""
  skip = ("parent", "name")
  return {
    f.name: _plain(getattr(model, f.name))
    for f in dataclasses.fields(model)
    if f.name not in skip and not f.name.startswith("_")
  }


def optimizer_constants(tx: Any, _seen: set[int] | None = None) -> list[float]:
  """The numbers an optax transformation closes over, in order (adamw's
  weight decay, b1, b2, eps, learning rate...): optax exposes no
  hyperparameters, and these tell two settings of one optimizer apart."""
  seen = set() if _seen is None else _seen
  if id(tx) in seen or isinstance(tx, bool):
    return []
  seen.add(id(tx))
  if isinstance(tx, (int, float)):
    return [float(tx)]
  if isinstance(tx, (tuple, list)):
    parts = tx
  elif isinstance(tx, functools.partial):
    parts = (tx.func, *tx.args, *tx.keywords.values())
  elif hasattr(tx, "init") and hasattr(tx, "update"):
    parts = (tx.init, tx.update)
  else:
    cells = getattr(tx, "__closure__", None) or ()
    parts = [c.cell_contents for c in cells if _has_contents(c)]
  return [x for part in parts for x in optimizer_constants(part, seen)]


def _has_contents(cell: Any) -> bool:
  try:
    cell.cell_contents  # noqa: B018  (an empty cell raises)
  except ValueError:
    return False
  return True


def describe_parts(
  model: nn.Module,
  input_shape: tuple[int, ...],
  *,
  own_model: bool,
  tx: optax.GradientTransformation | None,
  data_arg: str | InMemoryData | None,
  splits: Sequence[data.Split | None],
  num_classes: int | None = None,
) -> dict[str, Any] | None:
  """What a run took from its caller instead of its config, as plain values.

  None when every part comes from the config. Otherwise one entry per part
  (`"config"` for those that do come from the config): the caller's model's
  class, parameter count and a digest of its parameter shapes; the caller's
  optimizer's state structure (an optax transformation does not expose its
  hyperparameters); the TFDS name, or each split's size, shape and a digest
  of its bytes, with the number of classes they give the config's model.
  `model` is the model the run trains, `own_model` whether the caller
  brought it. The caller's model is also described by its fields (its
  activation as a spec, `activations.spec_of`) and the optimizer by the
  numbers it closes over (`optimizer_constants`), so that a resume with
  another activation or another b1 is refused.
  """
  if not own_model and tx is None and data_arg is None:
    return None
  x = jnp.zeros((1, *input_shape), jnp.float32)
  params = jax.eval_shape(lambda k: model.init(k, x)["params"], jax.random.key(0))
  out: dict[str, Any] = {"model": "config", "optimizer": "config", "data": "config"}
  if own_model:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    shapes = "\n".join(f"{jax.tree_util.keystr(p)}:{v.shape}" for p, v in flat)
    out["model"] = {
      "class": f"{type(model).__module__}.{type(model).__qualname__}",
      "fields": model_fields(model),
      "parameters": int(sum(np.prod(v.shape) for _, v in flat)),
      "shapes_sha256": hashlib.sha256(shapes.encode()).hexdigest()[:16],
    }
  if tx is not None:
    out["optimizer"] = {
      "state": _state_kinds(jax.eval_shape(tx.init, params)),
      "constants": optimizer_constants(tx),
    }
  if isinstance(data_arg, str):
    out["data"] = {"tfds": data_arg, "num_classes": num_classes}
  elif data_arg is not None:
    out["data"] = {"num_classes": num_classes} | {
      role: {
        "examples": len(s.labels),
        "image_shape": "x".join(map(str, s.images.shape[1:])),
        "dtype": s.images.dtype.name,
        "sha256": _digest(s.images, s.labels),
      }
      for role, s in zip(SPLIT_ROLES, splits)
      if s is not None
    }
  return out


# ----------------------------------------------------------------------------
# Config -> mesh, data on device, compiled steps
# ----------------------------------------------------------------------------


def make_mesh(devices: list[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  # Auto axes: XLA propagates shardings from the constraints placed on batches.
  return jax.make_mesh(
    (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
  )


def load_splits(
  config: Config, data_arg: str | InMemoryData | None = None
) -> tuple[data.Split, data.Split, data.Split | None]:
  """This process's slice of the train split, the whole eval and test splits.

  Eval and test are small (at most 10,000 images) and read whole by every
  process, so their metrics are exact for any number of processes. The test
  split is None when `config.data.test_split` is empty (the tutorial's protocol).
  `data_arg` replaces the config's dataset: a TFDS name (read with the
  config's split names) or in-memory arrays (`in_memory_splits`).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  if data_arg is not None and not isinstance(data_arg, str):
    train, evals, test = in_memory_splits(data_arg)
    return _process_slice(train), evals, test
  kw: dict[str, Any] = dict(data_dir=config.data.data_dir or None, download=config.data.download)
  if data_arg is not None:
    load = functools.partial(load_tfds, data_arg)
  else:
    kw["archive"] = config.data.archive or None
    load = data.load
  train_split = config.data.train_split
  if jax.process_count() > 1:
    train_split = tfds.split_for_jax_process(train_split, drop_remainder=True)
  test = load(config.data.test_split, **kw) if config.data.test_split else None
  return load(train_split, **kw), load(config.data.eval_split, **kw), test


def _process_slice(split: data.Split) -> data.Split:
  """This process's contiguous share of an in-memory split (all of it on one process)."""
  n = len(split.labels) // jax.process_count()
  i = jax.process_index()
  return data.Split(split.images[i * n : (i + 1) * n], split.labels[i * n : (i + 1) * n])


def make_preprocess(config: Config, train_images: np.ndarray | Array) -> Callable[[Array], Array]:
  """uint8 images -> model inputs, as chosen by `config.data.input_scaling`."""
  mean = std = None
  if config.data.input_scaling == "standardize":
    images = distributed.local_value(train_images)
    mean, std = (jnp.asarray(s) for s in data.cifar10.channel_stats(images))
  return functools.partial(data.scale_images, scaling=config.data.input_scaling, mean=mean, std=std)


def check_batch(config: Config, num_train: int) -> None:
  """Refuses a batch size that does not divide over the devices or exceeds the split."""
  n_dev = jax.device_count()
  if config.batch_size % n_dev:
    raise config_lib.ConfigError(
      f"config.batch_size={config.batch_size} does not divide over the"
      f" {n_dev} devices; use a multiple of {n_dev}."
    )
  if config.batch_size > num_train:
    raise config_lib.ConfigError(
      f"config.batch_size={config.batch_size} is larger than the training"
      f" split ({num_train} examples)."
    )


@dataclasses.dataclass(frozen=True)
class DeviceSplit:
  """A split on every device of every process, as uint8 images and int labels.

  `mask` is 1 for real examples and 0 for the padding that makes an eval or
  test split whole batches; the training split is not padded (its steps draw
  whole batches through the epoch's permutation) and has no mask.
  """

  images: Array
  labels: Array
  mask: Array | None = None

  @property
  def num_examples(self) -> int:
    """Examples on the device, padding included."""
    return self.images.shape[0]


def train_on_device(split: data.Split, mesh: jax.sharding.Mesh) -> DeviceSplit:
  """The global training split, assembled from every process's slice, replicated."""
  return DeviceSplit(
    distributed.replicate_slices(split.images, mesh),
    distributed.replicate_slices(split.labels, mesh),
  )


def _pad_to(a: np.ndarray, multiple: int) -> np.ndarray:
  pad = (-a.shape[0]) % multiple
  return np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a


def eval_on_device(split: data.Split, batch_size: int, mesh: jax.sharding.Mesh) -> DeviceSplit:
  """An eval or test split padded to whole batches, replicated, with a mask of real examples."""
  mask = np.ones(split.labels.shape, np.float32)
  images, labels, mask = (
    distributed.replicate(_pad_to(a, batch_size), mesh) for a in (split.images, split.labels, mask)
  )
  return DeviceSplit(images, labels, mask)


def eval_and_test_on_device(
  evals: data.Split, test: data.Split | None, batch_size: int, mesh: jax.sharding.Mesh
) -> tuple[DeviceSplit, DeviceSplit | None]:
  """`eval_on_device` of the eval split and of the test split, if there is one."""
  on_device = functools.partial(eval_on_device, batch_size=batch_size, mesh=mesh)
  return on_device(evals), on_device(test) if test is not None else None


@dataclasses.dataclass(frozen=True)
class CompiledSteps:
  """A run's jitted step functions (`compile_steps`); `i` is a step's index in its epoch.

  train: (state, sums, images, labels, order, i) -> (state, sums); donates state and sums.
  train_diagnosed: the same, also returning the step's diagnostics; None
    unless config.diagnostics.enabled.
  eval: (sums, params, images, labels, mask, i) -> sums; donates sums.
  permutation: (rng, epoch, num_examples) -> the epoch's order of the training split.
  zeros: (keys=steps.TRAIN_METRICS) -> zero metric sums on every device.
  copy: a pytree -> a copy on every device (the selected parameters outlive
    the donated state).
  """

  train: Callable[..., Any]
  train_diagnosed: Callable[..., Any] | None
  eval: Callable[..., Any]
  permutation: Callable[..., Any]
  zeros: Callable[..., Any]
  copy: Callable[..., Any]


def step_options(
  config: Config, preprocess: Callable[[Array], Array], mesh: jax.sharding.Mesh
) -> dict[str, Any]:
  """The keyword arguments `steps.train_on_indices` and `steps.eval_on_slice`
  take for a run: its batch size, its preprocessing, batches sharded over 'data'."""
  return dict(
    batch_size=config.batch_size,
    preprocess=preprocess,
    batch_sharding=NamedSharding(mesh, P("data")),
  )


def compile_steps(
  config: Config,
  model: nn.Module,
  preprocess: Callable[[Array], Array],
  mesh: jax.sharding.Mesh,
  activation: Any,
) -> CompiledSteps:
  """`steps`' functions jitted for `mesh`: batches sharded over 'data',
  metric sums and copies replicated, state and sums donated. `activation`
  is the model's `activation` field or None: diagnostics measure the sites
  that record no activation with it (unused without config.diagnostics.enabled)."""
  replicated = NamedSharding(mesh, P())
  common = step_options(config, preprocess, mesh)
  train = jax.jit(functools.partial(steps_lib.train_on_indices, **common), donate_argnums=(0, 1))
  evaluate = jax.jit(
    functools.partial(steps_lib.eval_on_slice, apply_fn=apply_fn(model), **common),
    donate_argnums=0,
  )
  permutation = jax.jit(steps_lib.epoch_permutation, static_argnums=2)
  train_diagnosed = None
  if config.diagnostics.enabled:
    diagnose = (activation, config.diagnostics.saturation_threshold)
    train_diagnosed = jax.jit(
      functools.partial(steps_lib.train_on_indices, diagnose=diagnose, **common),
      donate_argnums=(0, 1),
    )
  return CompiledSteps(
    train=train,
    train_diagnosed=train_diagnosed,
    eval=evaluate,
    permutation=permutation,
    # Metric sums live on every device of every process, like the state.
    zeros=jax.jit(steps_lib.zeros, static_argnums=0, out_shardings=replicated),
    copy=jax.jit(lambda tree: jax.tree.map(jnp.copy, tree), out_shardings=replicated),
  )


# ----------------------------------------------------------------------------
# (config, the caller's parts) -> the run's parts, in one call
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunParts:
  """Everything the training loop runs on (`run_parts`).

  mesh: the 1-D data-parallel mesh.
  model: the caller's model, or the config's.
  input_shape: one example's image shape (height, width, channels).
  train, evals, test: the splits on the devices (test None without one).
  steps: the compiled step functions.
  custom: `describe_parts` of what the caller brought (None: nothing), as
    config.json records it.
  init_state: rng -> the initial `TrainState` (the caller's or the config's
    optimizer), to be called inside jit.
  """

  mesh: jax.sharding.Mesh
  model: nn.Module
  input_shape: tuple[int, ...]
  train: DeviceSplit
  evals: DeviceSplit
  test: DeviceSplit | None
  steps: CompiledSteps
  custom: dict[str, Any] | None
  init_state: Callable[[Array], steps_lib.TrainState]


def run_parts(
  config: Config,
  *,
  model: nn.Module | None = None,
  tx: optax.GradientTransformation | None = None,
  data: str | InMemoryData | None = None,
  loading: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
  after_loading: Callable[[], None] = lambda: None,
) -> RunParts:
  """The run's parts from `config` and what the caller brought instead.

  `model`, `tx` and `data` replace the config's model, optimizer and dataset
  (see `actlab.train.train_and_evaluate`). Reading the data is the one slow
  stage: it runs inside `loading()` (a context in which, e.g., a signal may
  interrupt a download) and `after_loading()` is called when it is done (e.g.
  to stop there if a stop was requested).
  """
  with loading():
    train, evals, test = load_splits(config, data)
  after_loading()
  input_shape = tuple(train.images.shape[1:])
  mesh = make_mesh()
  train_data = train_on_device(train, mesh)
  check_batch(config, train_data.num_examples)
  own_model = model is not None
  num_classes = _caller_num_classes(data, train_data.labels, evals, test)
  if model is None:
    model = make_model(config, num_classes)
  # Standardisation statistics from the whole (global) training split.
  preprocess = make_preprocess(config, train_data.images)
  return RunParts(
    mesh=mesh,
    model=model,
    input_shape=input_shape,
    train=train_data,
    evals=eval_on_device(evals, config.batch_size, mesh),
    test=eval_on_device(test, config.batch_size, mesh) if test is not None else None,
    steps=compile_steps(config, model, preprocess, mesh, getattr(model, "activation", None)),
    custom=_caller_parts(model, input_shape, own_model, tx, data, num_classes),
    init_state=functools.partial(create_train_state, config, model, tx=tx, input_shape=input_shape),
  )


def _caller_parts(
  model: nn.Module,
  input_shape: tuple[int, ...],
  own_model: bool,
  tx: optax.GradientTransformation | None,
  data_arg: str | InMemoryData | None,
  num_classes: int | None,
) -> dict[str, Any] | None:
  """`describe_parts` of what the caller brought; None: nothing."""
  in_memory = data_arg is not None and not isinstance(data_arg, str)
  return describe_parts(
    model,
    input_shape,
    own_model=own_model,
    tx=tx,
    data_arg=data_arg,
    splits=in_memory_splits(data_arg) if in_memory else (),
    num_classes=num_classes,
  )


def _caller_num_classes(
  data_arg: str | InMemoryData | None, train_y: Array, *splits: data.Split | None
) -> int | None:
  """Classes of a caller's data (largest label + 1 over every split, the
  whole training split included); None: the config's dataset's."""
  if data_arg is None:
    return None
  labels = [s.labels for s in splits if s is not None]
  return num_classes_of(distributed.local_value(train_y), *labels)
