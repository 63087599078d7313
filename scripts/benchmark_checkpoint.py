r"""Cost of a checkpoint of the default experiment's train state.

Times, for the LeNet5/Adam state that `train.py` saves every epoch, (a) the
part of `Checkpoints.save` the training loop waits for (arrays copied off the
device; the write continues in the background) and (b) save + wait until the
checkpoint is committed on disk, the whole cost if nothing overlapped. Divide
by an epoch's time (the `seconds` field of a run's train records) for the
fraction of epoch time.

  python scripts/benchmark_checkpoint.py --repeats=10 --workdir=/tmp/ckpt_bench \
      --run=/tmp/actlab/lenet5_relu --out=docs/benchmarks/checkpoint_cpu.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from actlab import build, checkpoint, config, steps, writers  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--workdir", type=Path, required=True, help="scratch folder (emptied)")
  parser.add_argument("--run", type=Path, default=None, help="a finished run, for epoch times")
  parser.add_argument("--out", type=Path, default=None)
  args = parser.parse_args()
  shutil.rmtree(args.workdir, ignore_errors=True)
  c = config.base_config()
  state = build.create_train_state(c, build.make_model(c), jax.random.key(0))
  tree = {"state": state, "epoch_totals": steps.zeros()}
  nbytes = sum(x.nbytes for x in jax.tree.leaves(tree))
  ckpt = checkpoint.Checkpoints(args.workdir, max_to_keep=3)
  blocked, total = [], []
  for i in range(args.repeats + 1):
    before = ckpt.seconds_blocked
    t = time.perf_counter()
    ckpt.save(i, tree)
    blocked.append(ckpt.seconds_blocked - before)
    ckpt.wait()
    total.append(time.perf_counter() - t)
  ckpt.close()
  blocked, total = blocked[1:], total[1:]  # the first save creates folders
  result = {
      "bytes": nbytes,
      "blocked_seconds_median": statistics.median(blocked),
      "save_and_commit_seconds_median": statistics.median(total),
  }
  if args.run:
    epochs = [r["seconds"] for r in writers.read_metrics(args.run) if r["split"] == "train"]
    epoch = statistics.median(epochs)
    result["epoch_seconds_median"] = epoch
    result["blocked_fraction_of_epoch"] = result["blocked_seconds_median"] / epoch
    result["save_and_commit_fraction_of_epoch"] = result["save_and_commit_seconds_median"] / epoch
  print(json.dumps(result, indent=2))
  if args.out:
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
  main()
