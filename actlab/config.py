"""The base config and its checks (presets and `:key=value` arguments: `actlab.presets`)."""

from __future__ import annotations

import difflib
import math
from typing import Any

import ml_collections


class ConfigError(ValueError):
  """A config field has a bad value; the message names it and the fix."""


NONFINITE_POLICIES = ("stop", "skip")
DTYPES = ("float32", "bfloat16")
GROUPS = ("model", "optim", "data", "diagnostics")

# Where each field of the earlier flat config lives now; `upgrade` reads a
# flat config.json (a run saved before the groups) as a grouped one.
FLAT_FIELDS = {
  "model": "model.name",
  "activation": "model.activation",
  "kernel_init": "model.kernel_init",
  "mlp_depth": "model.mlp_depth",
  "mlp_width": "model.mlp_width",
  "dtype": "model.dtype",
  "fast_layers": "model.fast_layers",
  "optimizer": "optim.name",
  "learning_rate": "optim.learning_rate",
  "adam_b1": "optim.b1",
  "adam_b2": "optim.b2",
  "adam_eps": "optim.eps",
  "weight_decay": "optim.weight_decay",
  "momentum": "optim.momentum",
  "dataset": "data.name",
  "data_dir": "data.data_dir",
  "download": "data.download",
  "archive": "data.archive",
  "train_split": "data.train_split",
  "eval_split": "data.eval_split",
  "test_split": "data.test_split",
  "input_scaling": "data.input_scaling",
  "diagnostics": "diagnostics.enabled",
  "diagnostics_every_steps": "diagnostics.every_steps",
  "saturation_threshold": "diagnostics.saturation_threshold",
}
FAST_LAYERS = ("auto", "on", "off")


def base_config() -> ml_collections.ConfigDict:
  """The tutorial's run (LeNet5, ReLU, Adam 1e-3, batch 256, 10 epochs).

  Grouped like the run's parts: `model.*` (the flax module), `optim.*` (the
  optax transformation), `data.*` (dataset, splits, scaling),
  `diagnostics.*`; the loop's own fields (seed, batch size, epochs, logging,
  checkpoints, the non-finite policy) sit at the top. Experiment configs
  start from this and change what they study.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Modules to import first, comma-separated: the activations, models,
  # optimizers and datasets they register() can then be named (e.g. "my_pkg.acts").
  c.imports = ""

  c.model = ml_collections.ConfigDict()
  c.model.name = "lenet5"  # a key of actlab.choices.MODELS: "lenet5", "mlp"
  c.model.activation = "relu"  # a registry spec, or "my_pkg.acts:fn" (imported, checked)
  c.model.kernel_init = "glorot_uniform"  # Keras's default, as in the tutorial
  c.model.mlp_depth = 10  # hidden layers of the MLP
  c.model.mlp_width = 128
  c.model.dtype = "float32"  # "bfloat16": bf16 compute, float32 parameters
  # LeNet5's exact blocked convolutions (actlab.layers): "auto" uses them on
  # XLA:CPU only, "on" everywhere they are exact, "off" never.
  c.model.fast_layers = "auto"

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"  # a key of actlab.choices.OPTIMIZERS
  c.optim.learning_rate = 1e-3
  # Keras's Adam defaults (epsilon 1e-7, not optax's 1e-8).
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-7
  c.optim.weight_decay = 1e-4  # adamw only
  c.optim.momentum = 0.9  # momentum only

  # TFDS `name` from data_dir ($TFDS_DATA_DIR or ~/tensorflow_datasets).
  c.data = ml_collections.ConfigDict()
  c.data.name = "cifar10"  # a key of actlab.choices.DATASETS
  c.data.data_dir = ""
  c.data.download = True  # download and prepare if missing (needs internet)
  c.data.archive = ""  # or prepare from a local cifar-10-binary.tar.gz / folder
  c.data.train_split = "train"
  # The tutorial validates on the test split. Comparisons use
  # `presets.validation_protocol(c)`: select on train[45000:], test once.
  c.data.eval_split = "test"
  c.data.test_split = ""  # evaluated once, at the epoch selected on eval_split
  c.data.input_scaling = "raw"  # raw 0-255 as in the tutorial; or unit, standardize

  c.batch_size = 256
  c.num_epochs = 10
  c.early_stopping_patience = 0  # epochs without a better eval accuracy; 0: off
  c.log_every_steps = 20
  c.keep_checkpoints = 3
  c.checkpoint_every_steps = 0  # 0: only at the end of every epoch
  c.nonfinite_policy = "stop"  # or "skip": skip steps with non-finite loss/grad
  c.max_consecutive_skips = 10  # "skip" stops after this many in a row
  # Seeds trained together in one compiled program (actlab.multiseed): N>1
  # trains seeds seed..seed+N-1 into workdir/seed_<s>/. For accelerators; on
  # CPU one seed per program is faster (docs/benchmarks.md).
  c.seeds_per_program = 1
  # How those seeds share the program: "vmap" (batched: one wide step, what
  # an accelerator wants), "unroll" (each seed's step written out in turn:
  # a single run's speed per seed on CPU) or "auto" (unroll on CPU, vmap
  # elsewhere). The same functions either way.
  c.seed_batching = "auto"

  # Per-layer gradient norms, activation statistics, saturated and dead
  # units, update ratios: logged as "diagnostics" records (actlab.diagnostics).
  c.diagnostics = ml_collections.ConfigDict()
  c.diagnostics.enabled = False
  c.diagnostics.every_steps = 50
  c.diagnostics.saturation_threshold = 0.01  # eps, relative to the activation's maximum slope
  # Locked: a misspelt field (`c.epochs = 3`, `--config.optim.learning_rat=3`) is an
  # error naming the closest real one, never a silently ignored new field.
  c.lock()
  return c


_REQUIRED = object()


def value_at(tree: ml_collections.ConfigDict | dict[str, Any], path: str, default: Any = _REQUIRED):
  """`tree.a.b` for `path="a.b"`, in a config or its config.json dict;
  `default` when there is no such field (KeyError when none is given)."""
  node: Any = tree
  for part in path.split("."):
    if not isinstance(node, (dict, ml_collections.ConfigDict)) or part not in node:
      if default is _REQUIRED:
        raise KeyError(path)
      return default
    node = node[part]
  return node


def flatten(tree: ml_collections.ConfigDict | dict[str, Any], prefix: str = "") -> dict[str, Any]:
  """`{"seed": 0, "model.name": "lenet5", ...}`: every field by dotted path
  (an empty group counts as a field)."""
  flat: dict[str, Any] = {}
  for key, value in tree.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)) and value:
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def _positive_int(config: ml_collections.ConfigDict, field: str) -> None:
  value = value_at(config, field)
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ConfigError(
      f"config.{field} must be a positive integer, got {value!r}. Set it with --config.{field}=N."
    )


def _non_negative_int(config: ml_collections.ConfigDict, field: str, zero_means: str) -> None:
  value = value_at(config, field)
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ConfigError(
      f"config.{field} must be 0 ({zero_means}) or a positive integer, got {value!r}."
    )


def _positive_float(config: ml_collections.ConfigDict, field: str) -> None:
  value = value_at(config, field)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
    raise ConfigError(
      f"config.{field} must be a positive finite number, got {value!r}."
      f" Set it with --config.{field}=X."
    )


def _fraction(config: ml_collections.ConfigDict, field: str) -> None:
  """A decay rate in [0, 1): 1 never forgets and makes Adam divide by zero."""
  value = value_at(config, field)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
    raise ConfigError(
      f"config.{field} must be in [0, 1), got {value!r}. Set it with --config.{field}=X."
    )


def _finite_activation_params(spec: str) -> None:
  """`elu(alpha=1e400)` parses as alpha=inf, which no activation means."""
  from actlab import activations  # pylint: disable=g-import-not-at-top

  name, kwargs = activations.parse_spec(spec)
  for k, v in kwargs.items():
    if isinstance(v, float) and not math.isfinite(v):
      raise ConfigError(f"config.model.activation: {name} parameter {k}={v!r} must be finite.")


SEED_BATCHING = ("auto", "vmap", "unroll")


def _one_of(config: ml_collections.ConfigDict, field: str, choices) -> None:
  value = value_at(config, field)
  if value not in choices:
    raise ConfigError(f"config.{field}={value!r} is not one of {', '.join(choices)}.")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad field and what it should be."""
  missing = [g for g in GROUPS if not isinstance(config.get(g), ml_collections.ConfigDict)]
  if missing:
    raise ConfigError(
      f"The config has no group {', '.join(missing)}: configs are grouped"
      f" ({', '.join(f'config.{g}.*' for g in GROUPS)}). Start from"
      " actlab.config.base_config(); `config.from_saved(flat_dict)` reads an old flat one."
    )
  for field in (
    "batch_size",
    "num_epochs",
    "log_every_steps",
    "keep_checkpoints",
    "max_consecutive_skips",
  ):
    _positive_int(config, field)
  if "seeds_per_program" in config:  # configs built before the field existed lack it
    _positive_int(config, "seeds_per_program")
  if "seed_batching" in config:
    _one_of(config, "seed_batching", SEED_BATCHING)
  _non_negative_int(config, "checkpoint_every_steps", "per epoch only")
  _non_negative_int(config, "early_stopping_patience", "off")
  _one_of(config, "nonfinite_policy", NONFINITE_POLICIES)
  if isinstance(config.seed, bool) or not isinstance(config.seed, int):
    raise ConfigError(f"config.seed must be an integer, got {config.seed!r}.")
  # First: the modules may register the models, optimizers and datasets
  # the config names.
  import_modules(config)
  _validate_data(config)
  _validate_optim(config)
  _validate_model(config)
  if config.diagnostics.enabled:
    _positive_int(config, "diagnostics.every_steps")
    _positive_float(config, "diagnostics.saturation_threshold")


def import_modules(config: ml_collections.ConfigDict) -> None:
  """Imports `config.imports` (comma-separated modules, the current directory
  importable), whose `register...()` calls add choices by name."""
  from actlab.activations import spec  # pylint: disable=g-import-not-at-top

  modules = [m.strip() for m in config.get("imports", "").split(",") if m.strip()]
  try:
    spec.import_modules(modules)
  except ValueError as e:
    raise ConfigError(f"config.imports: {e}") from None


def _validate_data(config: ml_collections.ConfigDict) -> None:
  from actlab import choices  # pylint: disable=g-import-not-at-top
  from actlab.data.cifar10 import SCALINGS  # pylint: disable=g-import-not-at-top

  d = config.data
  _one_of(config, "data.name", choices.choices(choices.DATASETS))
  _one_of(config, "data.input_scaling", SCALINGS)
  if d.test_split and d.test_split == d.eval_split:
    raise ConfigError(
      f"config.data.test_split={d.test_split!r} is also the eval split: epochs would be"
      " selected on the data they are tested on. Use --config.data.eval_split=train[45000:]"
      " --config.data.train_split=train[:45000]."
    )
  if config.early_stopping_patience and not d.test_split:
    raise ConfigError(
      "config.early_stopping_patience needs a validation protocol: with"
      f" data.eval_split={d.eval_split!r} and no data.test_split, stopping early"
      " would select on the test set. Set --config.data.test_split=test and"
      " --config.data.eval_split=train[45000:] --config.data.train_split=train[:45000]."
    )


def _validate_optim(config: ml_collections.ConfigDict) -> None:
  from actlab import choices  # pylint: disable=g-import-not-at-top

  _one_of(config, "optim.name", choices.choices(choices.OPTIMIZERS))
  _positive_float(config, "optim.learning_rate")
  for field in ("optim.b1", "optim.b2", "optim.momentum"):
    _fraction(config, field)
  _positive_float(config, "optim.eps")


def _validate_model(config: ml_collections.ConfigDict) -> None:
  from actlab import activations, choices  # pylint: disable=g-import-not-at-top

  _one_of(config, "model.name", choices.choices(choices.MODELS))
  _one_of(config, "model.kernel_init", choices.choices(choices.INITIALIZERS))
  _one_of(config, "model.dtype", DTYPES)
  _one_of(config, "model.fast_layers", FAST_LAYERS)
  if config.model.name == "mlp":
    for field in ("model.mlp_depth", "model.mlp_width"):
      _positive_int(config, field)
  try:
    activations.get(config.model.activation)
  except ValueError as e:
    raise ConfigError(f"config.model.activation: {e}") from None
  _finite_activation_params(config.model.activation)


def upgrade(saved: dict[str, Any]) -> dict[str, Any]:
  """A config.json written before the groups, regrouped; a grouped one as is.

  `{"activation": "tanh", "learning_rate": 0.01, "seed": 3, ...}` becomes
  `{"model": {"activation": "tanh"}, "optim": {"learning_rate": 0.01},
  "seed": 3, ...}` (see `FLAT_FIELDS`).
  """
  if isinstance(saved.get("model"), dict):
    return saved
  out: dict[str, Any] = {}
  for key, value in saved.items():
    group, _, field = FLAT_FIELDS.get(key, key).rpartition(".")
    (out.setdefault(group, {}) if group else out)[field] = value
  return out


def leaf_paths(config: ml_collections.ConfigDict | dict[str, Any]) -> list[str]:
  """Every field's dotted path: `["seed", "model.name", "model.activation", ...]`."""
  return list(flatten(config))


def closest_field(config: ml_collections.ConfigDict, path: str) -> str | None:
  """The real field a misspelt or ungrouped `path` most likely means.

  `activation` -> `model.activation` (the same name inside a group),
  `adam_b1` -> `optim.b1` (a field of the flat config), `optim.learning_rat`
  -> `optim.learning_rate`... None when nothing is close (`optim.lr`).
  """
  leaves = leaf_paths(config)
  if path in leaves:
    return path
  last = path.rsplit(".", 1)[-1]
  same_name = [p for p in leaves if p.rsplit(".", 1)[-1] == last]
  if len(same_name) == 1:
    return same_name[0]
  if FLAT_FIELDS.get(path) in leaves:
    return FLAT_FIELDS[path]
  group = path.rpartition(".")[0]
  in_group = [p for p in leaves if p.rpartition(".")[0] == group] if group else []
  names = {p.rsplit(".", 1)[-1]: p for p in (in_group or leaves)}
  close = difflib.get_close_matches(last, list(names), n=1)
  return names[close[0]] if close else None


def upgrade_fields(fields: dict[str, Any]) -> dict[str, Any]:
  """Field names of the flat config as dotted paths (a sweep's conditions)."""
  return {FLAT_FIELDS.get(k, k): v for k, v in fields.items()}


def from_saved(saved: dict[str, Any]) -> ml_collections.ConfigDict:
  """A run's config.json as a locked config: `base_config()` updated with it.

  A flat config.json is regrouped (`upgrade`); fields actlab gained after
  the run was saved keep their defaults; extra entries (a study's
  `activations`, the caller's `custom` parts) are kept.
  """
  config = base_config()
  with config.unlocked():
    config.update(upgrade(saved))
  return config
