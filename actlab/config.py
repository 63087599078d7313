"""The base config and its checks (presets and `:key=value` arguments: `actlab.presets`)."""

from __future__ import annotations

import math

import ml_collections

from actlab import activations, build
from actlab.data.cifar10 import SCALINGS


class ConfigError(ValueError):
  """A config field has a bad value; the message names it and the fix."""


NONFINITE_POLICIES = ("stop", "skip")
DTYPES = ("float32", "bfloat16")
FAST_LAYERS = ("auto", "on", "off")


def base_config() -> ml_collections.ConfigDict:
  """The tutorial's run (LeNet5, ReLU, Adam 1e-3, batch 256, 10 epochs).

  Experiment configs start from this and change what they study.
  """
  c = ml_collections.ConfigDict()
  c.model = "lenet5"  # or "mlp" (the deep MLP of the gradient studies)
  c.activation = "relu"  # a registry spec, or "my_pkg.acts:fn" (imported, checked)
  # Modules to import first, comma-separated: activations they register()
  # can then be named in `activation` (e.g. "my_pkg.acts").
  c.imports = ""
  c.kernel_init = "glorot_uniform"  # Keras's default, as in the tutorial
  c.mlp_depth = 10  # hidden layers of the MLP
  c.mlp_width = 128
  c.seed = 0

  # Data: TFDS cifar10 from data_dir ($TFDS_DATA_DIR or ~/tensorflow_datasets).
  c.dataset = "cifar10"  # a key of actlab.build.DATASETS
  c.data_dir = ""
  c.download = True  # download and prepare if missing (needs internet)
  c.archive = ""  # or prepare from a local cifar-10-binary.tar.gz / folder
  c.train_split = "train"
  # The tutorial validates on the test split. Comparisons use
  # `presets.validation_protocol(c)`: select on train[45000:], test once.
  c.eval_split = "test"
  c.test_split = ""  # evaluated once, at the epoch selected on eval_split
  c.early_stopping_patience = 0  # epochs without a better eval accuracy; 0: off
  c.input_scaling = "raw"  # raw 0-255 as in the tutorial; or unit, standardize

  c.optimizer = "adam"
  c.learning_rate = 1e-3
  # Keras's Adam defaults (epsilon 1e-7, not optax's 1e-8).
  c.adam_b1 = 0.9
  c.adam_b2 = 0.999
  c.adam_eps = 1e-7
  c.weight_decay = 1e-4  # adamw only
  c.momentum = 0.9  # momentum only
  c.batch_size = 256
  c.num_epochs = 10
  c.dtype = "float32"  # "bfloat16": bf16 compute, float32 parameters
  # LeNet5's exact blocked convolutions (actlab.layers): "auto" uses them on
  # XLA:CPU only, "on" everywhere they are exact, "off" never.
  c.fast_layers = "auto"

  c.log_every_steps = 20
  c.keep_checkpoints = 3
  c.checkpoint_every_steps = 0  # 0: only at the end of every epoch
  # Per-layer gradient norms, activation statistics, saturated and dead
  # units, update ratios: logged as "diagnostics" records (actlab.diagnostics).
  c.diagnostics = False
  c.diagnostics_every_steps = 50
  c.saturation_threshold = 0.01  # eps, relative to the activation's maximum slope
  c.nonfinite_policy = "stop"  # or "skip": skip steps with non-finite loss/grad
  c.max_consecutive_skips = 10  # "skip" stops after this many in a row
  # Locked: a misspelt field (`c.epochs = 3`, `--config.num_epoch=3`) is an
  # error naming the closest real one, never a silently ignored new field.
  c.lock()
  return c


def _positive_int(config: ml_collections.ConfigDict, field: str) -> None:
  value = config[field]
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ConfigError(
      f"config.{field} must be a positive integer, got {value!r}. Set it with --config.{field}=N."
    )


def _positive_float(config: ml_collections.ConfigDict, field: str) -> None:
  value = config[field]
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
    raise ConfigError(
      f"config.{field} must be a positive finite number, got {value!r}."
      f" Set it with --config.{field}=X."
    )


def _fraction(config: ml_collections.ConfigDict, field: str) -> None:
  """A decay rate in [0, 1): 1 never forgets and makes Adam divide by zero."""
  value = config[field]
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
    raise ConfigError(
      f"config.{field} must be in [0, 1), got {value!r}. Set it with --config.{field}=X."
    )


def _finite_activation_params(spec: str) -> None:
  """`elu(alpha=1e400)` parses as alpha=inf, which no activation means."""
  name, kwargs = activations.parse_spec(spec)
  for k, v in kwargs.items():
    if isinstance(v, float) and not math.isfinite(v):
      raise ConfigError(f"config.activation: {name} parameter {k}={v!r} must be finite.")


def _one_of(config: ml_collections.ConfigDict, field: str, choices) -> None:
  if config[field] not in choices:
    raise ConfigError(f"config.{field}={config[field]!r} is not one of {', '.join(choices)}.")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad field and what it should be."""
  for field in (
    "batch_size",
    "num_epochs",
    "log_every_steps",
    "keep_checkpoints",
    "max_consecutive_skips",
  ):
    _positive_int(config, field)
  every = config.checkpoint_every_steps
  if isinstance(every, bool) or not isinstance(every, int) or every < 0:
    raise ConfigError(
      f"config.checkpoint_every_steps must be 0 (per epoch only) or a positive"
      f" integer, got {every!r}."
    )
  _one_of(config, "nonfinite_policy", NONFINITE_POLICIES)
  if config.get("test_split") and config.test_split == config.eval_split:
    raise ConfigError(
      f"config.test_split={config.test_split!r} is also the eval split: epochs would be"
      " selected on the data they are tested on. Use --config.eval_split=train[45000:]"
      " --config.train_split=train[:45000]."
    )
  patience = config.get("early_stopping_patience", 0)
  if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
    raise ConfigError(
      f"config.early_stopping_patience must be 0 (off) or a positive integer, got {patience!r}."
    )
  if patience and not config.get("test_split"):
    raise ConfigError(
      "config.early_stopping_patience needs a validation protocol: with"
      f" eval_split={config.eval_split!r} and no test_split, stopping early"
      " would select on the test set. Set --config.test_split=test and"
      " --config.eval_split=train[45000:] --config.train_split=train[:45000]."
    )
  if config.get("diagnostics"):
    _positive_int(config, "diagnostics_every_steps")
    _positive_float(config, "saturation_threshold")
  if "seed" in config and (isinstance(config.seed, bool) or not isinstance(config.seed, int)):
    raise ConfigError(f"config.seed must be an integer, got {config.seed!r}.")
  _positive_float(config, "learning_rate")
  for field in ("adam_b1", "adam_b2", "momentum"):
    _fraction(config, field)
  _positive_float(config, "adam_eps")
  # Every named choice is a key of one of actlab.build's tables.
  _one_of(config, "optimizer", build.choices(build.OPTIMIZERS))
  _one_of(config, "input_scaling", SCALINGS)
  _one_of(config, "dtype", DTYPES)
  _one_of(config, "model", build.choices(build.MODELS))
  _one_of(config, "kernel_init", build.choices(build.INITIALIZERS))
  _one_of(config, "dataset", build.choices(build.DATASETS))
  _one_of(config, "fast_layers", FAST_LAYERS)
  if config.model == "mlp":
    for field in ("mlp_depth", "mlp_width"):
      _positive_int(config, field)
  try:
    modules = [m.strip() for m in config.get("imports", "").split(",") if m.strip()]
    activations.import_modules(modules)
    activations.get(config.activation)
  except ValueError as e:
    raise ConfigError(f"config.activation: {e}") from None
  _finite_activation_params(config.activation)
