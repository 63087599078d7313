"""Config checks and the `:key=value,flag` variants of experiment configs."""

from __future__ import annotations

import ast
from typing import Any

import ml_collections

from actlab import activations
from actlab.data.cifar10 import SCALINGS

class ConfigError(ValueError):
  """A config field has a bad value; the message names it and the fix."""


OPTIMIZERS = ("adam", "adamw", "sgd", "momentum")
NONFINITE_POLICIES = ("stop", "skip")
DTYPES = ("float32", "bfloat16")


def parse_arg(arg: str | None) -> dict[str, Any]:
  """`'act=tanh,epochs=3,runlocal'` -> {'act': 'tanh', 'epochs': 3, 'runlocal': True}.

  Values are read as Python literals where they parse as one, else kept as
  strings. A comma inside parentheses does not split, so `act=elu(alpha=0.5)`
  works.
  """
  out: dict[str, Any] = {}
  if not arg:
    return out
  parts, depth, cur = [], 0, ""
  for ch in arg:
    depth += (ch == "(") - (ch == ")")
    if ch == "," and depth == 0:
      parts.append(cur)
      cur = ""
    else:
      cur += ch
  parts.append(cur)
  for part in filter(None, (p.strip() for p in parts)):
    key, sep, value = part.partition("=")
    if not sep:
      out[key] = True
      continue
    try:
      out[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      out[key] = value
  return out


def _positive_int(config: ml_collections.ConfigDict, field: str) -> None:
  value = config[field]
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ConfigError(
        f"config.{field} must be a positive integer, got {value!r}."
        f" Set it with --config.{field}=N."
    )


def _positive_float(config: ml_collections.ConfigDict, field: str) -> None:
  value = config[field]
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
    raise ConfigError(
        f"config.{field} must be a positive number, got {value!r}."
        f" Set it with --config.{field}=X."
    )


def _one_of(config: ml_collections.ConfigDict, field: str, choices) -> None:
  if config[field] not in choices:
    raise ConfigError(
        f"config.{field}={config[field]!r} is not one of {', '.join(choices)}."
    )


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad field and what it should be."""
  for field in ("batch_size", "num_epochs", "log_every_steps", "keep_checkpoints",
                "max_consecutive_skips"):
    _positive_int(config, field)
  every = config.checkpoint_every_steps
  if isinstance(every, bool) or not isinstance(every, int) or every < 0:
    raise ConfigError(
        f"config.checkpoint_every_steps must be 0 (per epoch only) or a positive"
        f" integer, got {every!r}."
    )
  _one_of(config, "nonfinite_policy", NONFINITE_POLICIES)
  if "seed" in config and (isinstance(config.seed, bool) or not isinstance(config.seed, int)):
    raise ConfigError(f"config.seed must be an integer, got {config.seed!r}.")
  _positive_float(config, "learning_rate")
  _one_of(config, "optimizer", OPTIMIZERS)
  _one_of(config, "input_scaling", SCALINGS)
  _one_of(config, "dtype", DTYPES)
  try:
    activations.get(config.activation)
  except ValueError as e:
    raise ConfigError(f"config.activation: {e}") from None
