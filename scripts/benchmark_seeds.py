"""Training images/s of N seeds in one program vs N separate runs, one after another.

`--config.seeds_per_program=N` (actlab.multiseed) trains N seeds of one
condition in one program, batched over the seed axis (`seed_batching=vmap`)
or with each seed's step written out in turn (`seed_batching=unroll`). Its
peer is what a study does without it: N separate runs, each its own jitted
program, run one after another on the same device. Every side runs the steps
exactly as training does (the tutorial's LeNet5 and Adam, batch 256, the
dataset on the device as uint8, each step gathering its batch through the
seeds' own epoch orders); compile time and start-up are excluded (a warm-up
step first). Within each repeat the sides take turns, so drift in a shared
machine's speed hits all of them; reports the medians over repeats and the
median of the per-repeat ratios (grouped / separate images/s).

  nice -n 10 python scripts/benchmark_seeds.py --seeds=1,4,16,64 --steps=2 --repeats=3 \
      --batching=vmap,unroll --out=docs/benchmarks/seeds_cpu.json

On a GPU: install the CUDA extra (`pip install -e '.[cuda12]'`) and run the
same command (with more --steps); the devices are JAX's default ones.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 256


def _setup(num_seeds: int, devices: str, batchings: list[str]):
  """The data on the device, the states of seeds 0..N-1, the separate runs'
  program and {batching: (grouped program, stacked states)}."""
  from actlab import distributed

  distributed.use_cpu_cores(BATCH, devices)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  from actlab import build, data, multiseed
  from experiments.configs import lenet5_cifar10

  config = lenet5_cifar10.get_config()
  rng = np.random.default_rng(0)
  n = 8 * BATCH
  split = data.Split(
    rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
    rng.integers(0, 10, (n,), dtype=np.int32),
  )
  mesh = build.make_mesh()
  train = build.train_on_device(split, mesh)
  model = build.make_model(config)
  preprocess = build.make_preprocess(config, train.images)
  tx = build.make_optimizer(config)
  # Replicated, as training's states are (another sharding would compile again).
  replicated = NamedSharding(mesh, P())
  states = [
    jax.device_put(build.create_train_state(config, model, jax.random.key(s), tx=tx), replicated)
    for s in range(num_seeds)
  ]
  one = build.compile_steps(config, model, preprocess, mesh, model.activation)
  groups = {}
  for how in batchings:
    config.seed_batching = how
    stacked = jax.device_put(jax.tree.map(lambda *xs: jnp.stack(xs), *states), replicated)
    groups[how] = (multiseed.compile_steps(config, model, preprocess, mesh, num_seeds), stacked)
  return jax, jnp, train, states, one, groups


def measure(num_seeds: int, steps: int, repeats: int, devices: str, batchings: list[str]) -> dict:
  """images/s of each grouped program and of the separate runs, per repeat."""
  jax, jnp, train, states, one, groups = _setup(num_seeds, devices, batchings)
  n = train.num_examples
  orders = [one.permutation(s.rng, s.epoch, n) for s in states]
  sums = [one.zeros() for _ in states]
  live = {
    how: [group, stacked, group.zeros(), group.permutation(stacked.rng, stacked.epoch, n)]
    for how, (group, stacked) in groups.items()
  }

  def run_group(how: str, k: int) -> float:
    group, stacked, group_sums, order = live[how]
    t = time.perf_counter()
    for i in range(k):
      stacked, group_sums = group.train(
        stacked, group_sums, train.images, train.labels, order, jnp.int32(i)
      )
    jax.block_until_ready(stacked)
    live[how][1:3] = stacked, group_sums
    return time.perf_counter() - t

  def run_separate(k: int) -> float:
    t = time.perf_counter()
    for s in range(num_seeds):  # one run after another, as a study without grouping
      for i in range(k):
        states[s], sums[s] = one.train(
          states[s], sums[s], train.images, train.labels, orders[s], jnp.int32(i)
        )
      jax.block_until_ready(states[s])
    return time.perf_counter() - t

  first = {f"{how}_first_step_s": run_group(how, 1) for how in batchings}
  first["separate_first_step_s"] = run_separate(1)
  for how in batchings:  # warm: every program has met its inputs' shardings
    run_group(how, 1)
  run_separate(1)
  images = num_seeds * steps * BATCH
  rows = []
  for _ in range(repeats):
    row = {how: images / run_group(how, steps) for how in batchings}
    row["separate"] = images / run_separate(steps)
    rows.append(row)
  median = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
  return {
    "seeds": num_seeds,
    "devices": jax.device_count(),
    "backend": jax.default_backend(),
    **first,
    "repeats": rows,
    "separate_images_per_s": median("separate"),
    **{f"{how}_images_per_s": median(how) for how in batchings},
    **{
      f"{how}_ratio": statistics.median(r[how] / r["separate"] for r in rows) for how in batchings
    },
  }


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--seeds", default="1,4,16,64", help="values of N, comma-separated")
  parser.add_argument("--steps", type=int, default=2, help="timed steps per repeat and seed")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument(
    "--cpu_devices", default="auto", help="as experiments/main.py (accelerators: ignored)"
  )
  parser.add_argument(
    "--batching", default="vmap,unroll", help="grouped programs to measure: vmap, unroll or both"
  )
  parser.add_argument("--out", type=Path, help="write the results as JSON here")
  parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: measure this N
  args = parser.parse_args(argv)
  batchings = args.batching.split(",")
  if not batchings or set(batchings) - {"vmap", "unroll"}:
    parser.error(f"--batching takes vmap, unroll or vmap,unroll; got {args.batching!r}")
  if args.one:
    print(json.dumps(measure(args.one, args.steps, args.repeats, args.cpu_devices, batchings)))
    return 0
  import subprocess

  results = []
  for n in [int(s) for s in args.seeds.split(",")]:
    # Each N in a fresh process: no memory or compiled programs carried over.
    out = subprocess.run(
      [sys.executable, __file__, f"--one={n}", f"--steps={args.steps}",
       f"--repeats={args.repeats}", f"--cpu_devices={args.cpu_devices}",
       f"--batching={args.batching}"],
      cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode:
      sys.exit(f"N={n} failed:\n{out.stderr[-4000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    results.append(r)
    if args.out:  # after each N: a run stopped early keeps what it measured
      meta = {"machine": platform.machine(), "python": platform.python_version(), "argv": sys.argv}
      args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    grouped = "  ".join(
      f"{how} {r[f'{how}_images_per_s']:8.0f} images/s (ratio {r[f'{how}_ratio']:.2f})"
      for how in batchings
    )
    print(
      f"N={n:3d}  separate {r['separate_images_per_s']:8.0f} images/s  {grouped}"
      f"  ({r['backend']}, {r['devices']} device(s))",
      flush=True,
    )
  return 0


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  sys.exit(main())
