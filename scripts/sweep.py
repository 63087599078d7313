r"""Runs every run of a study config, one workdir each, one after another.

  python scripts/sweep.py --config=experiments/configs/vanishing_gradients.py \
      --workdir=/tmp/actlab/vanishing [--config.data_dir=/tmp/tfds ...] [--only=NAME,...]

A study config defines `sweep()`, a list of {"name": ..., field: value, ...};
each run is `get_config(arg)` with those fields and the `--config.FIELD=VALUE`
overrides, trained in WORKDIR/NAME. Finished runs are skipped (their
checkpoints are complete), interrupted ones resume.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import train  # noqa: E402


def load_config_module(path: str):
  file, _, arg = path.partition(":")
  spec = importlib.util.spec_from_file_location(Path(file).stem, file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module, arg or None


def _literal(value: str):
  try:
    return ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return value


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", required=True, help="study config file[:arg]")
  parser.add_argument("--workdir", required=True, type=Path, help="one folder per run goes here")
  parser.add_argument("--only", default="", help="comma-separated run names to run")
  args, rest = parser.parse_known_args()
  overrides = {}
  for item in rest:
    key, sep, value = item.removeprefix("--config.").partition("=")
    if not item.startswith("--config.") or not sep:
      parser.error(f"unrecognised argument {item!r}; overrides look like --config.FIELD=VALUE")
    overrides[key] = _literal(value)
  module, arg = load_config_module(args.config)
  base = module.get_config(arg)
  runs = module.sweep(base) if inspect.signature(module.sweep).parameters else module.sweep()
  only = set(filter(None, args.only.split(",")))
  for run in runs:
    run = dict(run)
    name = run.pop("name")
    if only and name not in only:
      continue
    config = module.get_config(arg)
    with config.unlocked():
      config.update({**run, **overrides})
    print(f"=== {name}: {config.activation} -> {args.workdir / name}", flush=True)
    train.train_and_evaluate(config, args.workdir / name)


if __name__ == "__main__":
  main()
