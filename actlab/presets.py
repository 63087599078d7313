"""Presets: named changes to a config, and the `:key=value,flag` arguments
of experiment configs.

They live in the installed package, so research code outside this
repository gets the same one-word variants the command line has:

>>> from actlab import presets
>>> c = presets.tutorial("act=tanh,runlocal")  # the tutorial's run, 1 epoch on 10% of the data
>>> c = presets.runlocal(presets.validation_protocol(base_config()))  # doctest: +SKIP

`experiments/configs/*.py` are thin users of this module: each starts from
`base_config()` (or `tutorial`), applies a preset and its own arguments.
Contradictory presets are an error, never a silent choice of one of them:
`epochs=3,runlocal` asks for 3 epochs and for 1.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import ml_collections

from actlab.config import ConfigError, base_config

Config = ml_collections.ConfigDict

VALIDATION_TRAIN_SPLIT = "train[:45000]"
VALIDATION_SPLIT = "train[45000:]"


def validation_protocol(c: Config) -> Config:
  """Train on 45,000 images, select the epoch on the other 5,000, test once.

  The test split is evaluated a single time, on the parameters of the epoch
  with the highest validation accuracy, and reported as the `test` record.
  """
  c.data.train_split = VALIDATION_TRAIN_SPLIT
  c.data.eval_split = VALIDATION_SPLIT
  c.data.test_split = "test"
  return c


PROXY_TRAIN_SPLIT = "train[:10000]"
PROXY_EPOCHS = 8

# Each activation family's own initialiser: He normal for the ReLU family
# (He et al. 2015), LeCun normal for SELU (Klambauer et al. 2017), Glorot
# uniform for tanh and sigmoid (Glorot and Bengio 2010).
OWN_INITIALISER = {
  "relu": "he_normal",
  "leaky_relu": "he_normal",
  "elu": "he_normal",
  "gelu": "he_normal",
  "silu": "he_normal",
  "mish": "he_normal",
  "prelu": "he_normal",
  "selu": "lecun_normal",
  "tanh": "glorot_uniform",
  "sigmoid": "glorot_uniform",
}


def proxy(c: Config) -> Config:
  """The cheap, many-seed budget: the validation protocol on 10,000 training
  images for `PROXY_EPOCHS` epochs (a sixth of the tutorial's images seen)."""
  validation_protocol(c)
  c.data.train_split = PROXY_TRAIN_SPLIT
  c.num_epochs = PROXY_EPOCHS
  return c


# The ten activations the comparison studies set side by side.
COMPARED_ACTIVATIONS = (
  "relu",
  "sigmoid",
  "tanh",
  "leaky_relu",
  "elu",
  "selu",
  "gelu",
  "silu",
  "mish",
  "prelu",
)


def proxy_study(arg: str | None, default_activations: tuple[str, ...]) -> Config:
  """A study on the proxy budget: `proxy(base_config())` with the study's
  `:acts=...,epochs=...` arguments applied."""
  c = proxy(base_config())
  apply_study_args(c, arg, default_activations)
  return c


def own_initialiser(activation: str) -> str:
  """The initialiser derived for `activation`'s family; an error names the known ones."""
  name = activation.split("(")[0]
  if name not in OWN_INITIALISER:
    raise ConfigError(
      f"No initialiser family for {name!r}; add it to actlab.presets.OWN_INITIALISER"
      f" (known: {', '.join(sorted(OWN_INITIALISER))})."
    )
  return OWN_INITIALISER[name]


def runlocal(c: Config) -> Config:
  """A laptop run: 1 epoch on 10% of the data, keeping `c`'s protocol (with
  a test split: 4,500 train, 500 validation, 10% of test)."""
  if c.data.test_split:
    c.data.train_split, c.data.eval_split, c.data.test_split = (
      "train[:4500]",
      "train[45000:45500]",
      "test[:10%]",
    )
  else:
    c.data.train_split, c.data.eval_split = "train[:10%]", "test[:10%]"
  c.num_epochs = 1
  return c


# flag -> (preset, what it does, the `key=` arguments it contradicts)
FLAGS: dict[str, tuple[Callable[[Config], Config], str, frozenset[str]]] = {
  "runlocal": (runlocal, "runs 1 epoch on 10% of the data", frozenset({"epochs"})),
}

COMMON_ARGS = "act=, epochs=, seed=, " + ", ".join(FLAGS)


def apply_args(c: Config, arg: str | None) -> dict[str, Any]:
  """Applies the common `:act=,epochs=,seed=` arguments and flag presets
  (`runlocal`) to `c`.

  Returns the arguments it did not consume, for the config to handle.
  Raises ConfigError when a flag contradicts another argument.
  """
  args = parse_arg(arg)
  given = set(args)
  if "act" in args:
    c.model.activation = args.pop("act")
  if "epochs" in args:
    c.num_epochs = args.pop("epochs")
  if "seed" in args:
    c.seed = args.pop("seed")
  for flag, (preset, what, contradicts) in FLAGS.items():
    if not args.pop(flag, False):
      continue
    clash = sorted(given & contradicts)
    if clash:
      raise ConfigError(
        f"{flag} {what}; it contradicts {', '.join(k + '=' for k in clash)}. Drop one of them."
      )
    preset(c)
  return args


def apply_study_args(c: Config, arg: str | None, default_activations: tuple[str, ...]) -> None:
  """`apply_args` plus `acts=a+b+...`, the activations a study sweeps over
  (stored as `c.activations`); any other argument is an error."""
  args = apply_args(c, arg)
  acts = args.pop("acts", None)
  with c.unlocked():
    c.activations = acts.split("+") if acts else list(default_activations)
  reject_unknown(args, "acts=a+b+..., " + COMMON_ARGS)


def reject_unknown(args: dict[str, Any], accepted: str = COMMON_ARGS) -> None:
  """Raises ConfigError naming arguments nothing consumed, and what is accepted."""
  if args:
    raise ConfigError(f"Unknown config argument(s) {sorted(args)}; this config takes {accepted}.")


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


def tutorial(arg: str | None = None) -> Config:
  """The tutorial's run (LeNet5, ReLU, Adam 1e-3, batch 256, 10 epochs);
  `arg` is `act=NAME,epochs=N,seed=S,runlocal`."""
  c = base_config()
  reject_unknown(apply_args(c, arg))
  return c
