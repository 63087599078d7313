r"""Throughput of actlab's train step on 1, 2, 4, 8 (simulated) devices.

The global batch (256) is sharded over a 1-D 'data' mesh of all devices, as
in a real run. On a CPU host the devices are simulated
(`JAX_NUM_CPU_DEVICES`) and share the same cores, so this measures what the
sharding costs, not a speed-up. Each measurement is a fresh subprocess; device
counts take turns, repeat after repeat.

  python scripts/benchmark_scaling.py --devices=1,2,4,8 --repeats=5 --steps=20 \
      --out=docs/benchmarks/scaling_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

from benchmark_training import run_child


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--devices", default="1,2,4,8")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  counts = [int(d) for d in args.devices.split(",")]
  runs: dict[int, list[float]] = {d: [] for d in counts}
  for r in range(args.repeats):
    for d in counts:
      result = run_child("actlab_jax", args.steps, args.warmup, JAX_NUM_CPU_DEVICES=str(d))
      runs[d].append(result["images_per_s"])
      print(f"repeat {r + 1}/{args.repeats}, {d} devices: {runs[d][-1]:.0f} images/s", flush=True)
  med = {d: statistics.median(v) for d, v in runs.items()}
  print(f"\n| devices | images/s (median of {args.repeats}) | min | max | ratio to 1 device |")
  print("|---:|---:|---:|---:|---:|")
  for d in counts:
    ratio = med[d] / med[counts[0]]
    print(f"| {d} | {med[d]:.0f} | {min(runs[d]):.0f} | {max(runs[d]):.0f} | {ratio:.2f} |")
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(
        {
          "batch_size": 256,
          "steps": args.steps,
          "runs": runs,
          "median": med,
          "cpus": os.cpu_count(),
        },
        f,
        indent=2,
      )


if __name__ == "__main__":
  main()
