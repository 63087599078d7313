r"""Training throughput of the tutorial's LeNet5: actlab (JAX) vs PyTorch vs Keras.

Also actlab variants against actlab itself: `actlab_jax_plain` (LeNet5 with
`fast_layers=False`: nn.Conv + max_pool, as on GPU/TPU; `actlab_jax` runs the
default, which on CPU is the blocked layers of actlab.layers),
`actlab_jax_1dev` (the default model on one CPU device multi-threaded over
all cores, instead of the default one CPU device per core),
`actlab_jax_2dev` (exactly 2 CPU devices, through XLA_FLAGS),
`actlab_jax_per_core` (one single-threaded `actlab_jax` pinned to each core,
as the sweep executor runs its workers, timed together: their summed
images/s), `actlab_jax_diagnostics` (every step computes all diagnostics)
and `actlab_jax_scan` (an epoch as one `lax.scan` program).

Each measurement runs in its own subprocess (so the frameworks never share
threads or memory), and the frameworks take turns, repeat after repeat, so
drift in a shared machine's speed hits all of them alike. Reports the median
images/s over repeats, and each framework's speed relative to the first one
listed, as the median of the ratios within each repeat (robust to drift
between repeats). actlab's rows also report the first step's latency (trace,
compile and run). `--import_repeats=N` also times `import actlab` and
`import actlab.train` in N fresh processes.

  python scripts/benchmark_training.py --repeats=5 --steps=30 \
      --frameworks=actlab_jax,actlab_jax_plain,pytorch,keras_tensorflow \
      --import_repeats=5 --out=docs/benchmarks/frameworks_cpu.json
  python scripts/benchmark_training.py --repeats=5 --steps=20 \
      --frameworks=actlab_jax,actlab_jax_diagnostics --out=docs/benchmarks/diagnostics_cpu.json

Needs the `bench` extra for PyTorch (`pip install -e '.[bench]'`); Keras comes
with tensorflow-cpu.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH = 256
ROOT = Path(__file__).resolve().parents[1]


def _data(n_batches: int):
  import numpy as np

  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (n_batches * BATCH, 32, 32, 3), dtype=np.uint8)
  y = rng.integers(0, 10, (n_batches * BATCH,), dtype=np.int32)
  return x, y


def bench_actlab(
  steps: int,
  warmup: int,
  scan: bool = False,
  diagnose: bool = False,
  fast: bool | None = None,
  devices: int | str = "auto",
) -> dict[str, float]:
  """actlab's own jitted step over the on-device dataset, as train.py runs it.

  `diagnose`: every step also computes all per-layer diagnostics. `fast`:
  LeNet5's `fast_layers` (None: its default). `devices`: CPU devices, as
  `experiments/main.py --cpu_devices` (default: one per core).
  """
  import functools

  from actlab import distributed

  distributed.use_cpu_cores(BATCH, devices)
  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  from actlab import build, data
  from actlab import steps as steps_lib
  from experiments.configs import lenet5_cifar10

  c = lenet5_cifar10.get_config()
  model = build.make_model(c)
  if fast is not None:
    model = model.clone(fast_layers=fast)
  state = build.create_train_state(c, model, jax.random.key(0))
  mesh = build.make_mesh()
  x, y = _data(steps)
  # As train.py: the whole dataset on every device, each step gathers its batch.
  x, y = distributed.replicate(x, mesh), distributed.replicate(y, mesh)
  order = jnp.arange(x.shape[0])
  common = dict(
    batch_size=BATCH,
    preprocess=functools.partial(data.scale_images, scaling="raw"),
    batch_sharding=NamedSharding(mesh, P("data")),
  )
  if scan:
    # The rejected design: a whole run of steps as one lax.scan program.
    def chunk(state, sums, x, y, order):
      def body(carry, i):
        s, m = steps_lib.train_on_indices(*carry, x, y, order, i, **common)
        return (s, m), None

      return jax.lax.scan(body, (state, sums), jnp.arange(steps))[0]

    run = jax.jit(chunk, donate_argnums=(0, 1))
    t = time.perf_counter()
    state, sums = run(state, steps_lib.zeros(), x, y, order)  # compiles
    jax.block_until_ready(state)
    first = time.perf_counter() - t
    t = time.perf_counter()
    state, sums = run(state, sums, x, y, order)
    jax.block_until_ready(state)
    return {"images_per_s": steps * BATCH / (time.perf_counter() - t), "first_step_s": first}

  if diagnose:
    common["diagnose"] = (model.activation, c.diagnostics.saturation_threshold)
  step = jax.jit(functools.partial(steps_lib.train_on_indices, **common), donate_argnums=(0, 1))
  sums = steps_lib.zeros()
  t = time.perf_counter()
  for i in range(warmup):
    state, sums, *_ = step(state, sums, x, y, order, jnp.int32(i % steps))
    if i == 0:  # trace, compile and run the first step
      jax.block_until_ready(state)
      first = time.perf_counter() - t
  jax.block_until_ready(state)
  _barrier()
  t = time.perf_counter()
  for i in range(steps):
    state, sums, *_ = step(state, sums, x, y, order, jnp.int32(i))
  jax.block_until_ready(state)
  return {"images_per_s": steps * BATCH / (time.perf_counter() - t), "first_step_s": first}


def _barrier() -> None:
  """With ACTLAB_BENCH_BARRIER=folder:n, waits until n measurements are warm.

  Concurrent measurements (`actlab_jax_per_core`) then time the same window.
  """
  spec = os.environ.get("ACTLAB_BENCH_BARRIER")
  if not spec:
    return
  folder, n = spec.rsplit(":", 1)
  Path(folder, f"ready_{os.getpid()}").touch()
  while len(list(Path(folder).glob("ready_*"))) < int(n):
    time.sleep(0.005)


def time_imports() -> dict[str, float]:
  """Seconds to import actlab (its lazy namespace), then actlab.train."""
  t = time.perf_counter()
  import actlab  # noqa: F401

  t1 = time.perf_counter()
  import actlab.train  # noqa: F401

  return {"import_actlab_s": t1 - t, "import_actlab_train_s": time.perf_counter() - t}


def bench_torch(steps: int, warmup: int) -> float:
  import torch
  from torch import nn

  model = nn.Sequential(
    nn.Conv2d(3, 6, 5, padding=2),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5, padding=2),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(16, 120, 5, padding=2),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(7680, 84),
    nn.ReLU(),
    nn.Linear(84, 10),
  )
  assert sum(p.numel() for p in model.parameters()) == 697_046
  opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
  loss_fn = nn.CrossEntropyLoss()
  x, y = _data(steps)
  # Same work as actlab's step: uint8 NHWC in memory, cast and laid out per batch.
  x = torch.from_numpy(x)
  y = torch.from_numpy(y).long()

  def step(i):
    xb = x[i * BATCH : (i + 1) * BATCH].permute(0, 3, 1, 2).float()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(xb), y[i * BATCH : (i + 1) * BATCH])
    loss.backward()
    opt.step()

  for i in range(warmup):
    step(i % steps)
  t = time.perf_counter()
  for i in range(steps):
    step(i)
  return steps * BATCH / (time.perf_counter() - t)


def bench_keras(steps: int, warmup: int) -> float:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import keras
  from keras import layers

  inputs = keras.Input((32, 32, 3))
  h = layers.Conv2D(6, 5, padding="same", activation="relu")(inputs)
  h = layers.MaxPool2D(2)(h)
  h = layers.Conv2D(16, 5, padding="same", activation="relu")(h)
  h = layers.MaxPool2D(2)(h)
  h = layers.Conv2D(120, 5, padding="same", activation="relu")(h)
  h = layers.Flatten()(h)
  h = layers.Dense(84, activation="relu")(h)
  outputs = layers.Dense(10, activation="softmax")(h)
  model = keras.Model(inputs, outputs)
  assert model.count_params() == 697_046
  model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
  x, y = _data(steps)
  model.fit(x[: warmup * BATCH], y[: warmup * BATCH], batch_size=BATCH, epochs=1, verbose=0)
  t = time.perf_counter()
  model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
  return steps * BATCH / (time.perf_counter() - t)


BENCHES = {
  "actlab_jax": bench_actlab,
  "actlab_jax_plain": lambda s, w: bench_actlab(s, w, fast=False),
  "actlab_jax_2dev": bench_actlab,
  "actlab_jax_1dev": lambda s, w: bench_actlab(s, w, devices=1),
  "actlab_jax_scan": lambda s, w: bench_actlab(s, w, scan=True),
  "actlab_jax_diagnostics": lambda s, w: bench_actlab(s, w, diagnose=True),
  "pytorch": lambda s, w: {"images_per_s": bench_torch(s, w)},
  "keras_tensorflow": lambda s, w: {"images_per_s": bench_keras(s, w)},
  "import": lambda s, w: time_imports(),
  "actlab_jax_per_core": lambda s, w: run_per_core(s, w),
}
# Extra environment of a measurement's subprocess.
ENVS = {"actlab_jax_2dev": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}}


def _child_env(name: str) -> dict[str, str]:
  env = dict(
    os.environ,
    PYTHONPATH=str(ROOT),
    JAX_PLATFORMS="cpu",
    CUDA_VISIBLE_DEVICES="",
  )
  for key, value in ENVS.get(name, {}).items():
    env[key] = f"{env.get(key, '')} {value}".strip()
  return env


def _start_child(
  name: str, steps: int, warmup: int, env: dict[str, str], pre=None
) -> subprocess.Popen:
  return subprocess.Popen(
    [sys.executable, __file__, "--child", name, f"--steps={steps}", f"--warmup={warmup}"],
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    preexec_fn=pre,
  )


def _result(name: str, proc: subprocess.Popen) -> dict[str, float]:
  out, err = proc.communicate()
  if proc.returncode != 0:
    raise RuntimeError(f"{name} failed:\n{err[-2000:]}")
  return json.loads(out.strip().splitlines()[-1])


def run_child(name: str, steps: int, warmup: int, **env: str) -> dict[str, float]:
  """One measurement (images/s and the like), in a fresh subprocess; `env`
  adds variables to its environment (e.g. JAX_NUM_CPU_DEVICES="4")."""
  return _result(name, _start_child(name, steps, warmup, _child_env(name) | env))


def run_per_core(steps: int, warmup: int) -> dict[str, float]:
  """The sweep executor's layout: one `actlab_jax` per core, pinned and
  single-threaded exactly as `scripts/sweep.py --workers=auto` runs them,
  timed over the same window; images/s is their sum.
  """
  import tempfile

  from actlab import sweep

  cores = sweep.available_cores() or [0]
  with tempfile.TemporaryDirectory() as barrier:
    procs = []
    for cpus in sweep.core_slots(cores, len(cores)):
      env, pre = sweep.pinned_worker(cpus, _child_env("actlab_jax"))
      env["ACTLAB_BENCH_BARRIER"] = f"{barrier}:{len(cores)}"
      procs.append(_start_child("actlab_jax", steps, warmup, env, pre))
    results = [_result("actlab_jax_per_core", p) for p in procs]
  return {
    "images_per_s": sum(r["images_per_s"] for r in results),
    "first_step_s": max(r["first_step_s"] for r in results),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
  parser.add_argument("--warmup", type=int, default=5)
  parser.add_argument(
    "--frameworks",
    default="actlab_jax,actlab_jax_plain,pytorch,keras_tensorflow",
    help=f"comma-separated, from {sorted(set(BENCHES) - {'import'})}; the first is the baseline",
  )
  parser.add_argument("--import_repeats", type=int, default=0, help="also time imports this often")
  parser.add_argument("--out", default="", help="write the results as JSON here")
  parser.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(BENCHES[args.child](args.steps, args.warmup)))
    return
  names = args.frameworks.split(",")
  runs: dict[str, list[float]] = {n: [] for n in names}
  first: dict[str, list[float]] = {n: [] for n in names}
  for r in range(args.repeats):
    for n in names:
      result = run_child(n, args.steps, args.warmup)
      runs[n].append(result["images_per_s"])
      if "first_step_s" in result:
        first[n].append(result["first_step_s"])
      print(f"repeat {r + 1}/{args.repeats} {n}: {runs[n][-1]:.0f} images/s", flush=True)
  med = {n: statistics.median(v) for n, v in runs.items()}
  base = names[0]
  # The ratio within each repeat, then the median: drift between repeats cancels.
  ratio = {n: statistics.median(a / b for a, b in zip(runs[n], runs[base])) for n in names}
  print(
    f"\n| framework | images/s (median of {args.repeats}) | min | max |"
    f" speed relative to {base} | first step s |"
  )
  print("|---|---:|---:|---:|---:|---:|")
  for n in names:
    f = f"{statistics.median(first[n]):.2f}" if first[n] else ""
    spread = f"{min(runs[n]):.0f} | {max(runs[n]):.0f}"
    print(f"| {n} | {med[n]:.0f} | {spread} | {ratio[n]:.2f} | {f} |")
  imports: dict[str, list[float]] = {}
  for _ in range(args.import_repeats):
    for k, v in run_child("import", 0, 0).items():
      imports.setdefault(k, []).append(v)
  for k, v in imports.items():
    print(f"{k}: median {statistics.median(v):.2f} s (min {min(v):.2f}, max {max(v):.2f})")
  if args.out:
    result = {
      "batch_size": BATCH,
      "steps": args.steps,
      "repeats": args.repeats,
      "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
      "load_average_1_5_15": os.getloadavg(),
      "runs": runs,
      "median": med,
      "ratio_to": base,
      "ratio": ratio,
      "first_step_s": first,
      "imports_s": imports,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
