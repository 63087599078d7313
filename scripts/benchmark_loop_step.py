r"""One LeNet5 gradient step inside `jax.lax.map` vs the same step outside it.

Why `--config.seed_batching=unroll` writes each seed's step out instead of
looping over the seeds: on XLA's CPU backend the gradient convolutions of a
loop body run far slower than the same ones at the top level of a program.
Times one seed's gradient (the tutorial's LeNet5, batch 256) plain, batched
with `jax.vmap` over a seed axis of 1, and looped with `jax.lax.map` over
it; compile excluded; medians of --repeats calls.

  nice -n 10 python scripts/benchmark_loop_step.py --repeats=3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  import jax
  import jax.numpy as jnp
  import optax

  from actlab import models

  model = models.LeNet5(activation="relu")
  kx, kp = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (256, 32, 32, 3))
  y = jnp.arange(256) % 10
  params = model.init(kp, x[:1])["params"]

  def grad(p):
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
      model.apply({"params": p}, x), y
    ).mean()
    return jax.grad(loss)(p)

  one_seed = jax.tree.map(lambda a: a[None], params)
  sides = {
    "plain": (jax.jit(grad), params),
    "vmap": (jax.jit(jax.vmap(grad)), one_seed),
    "lax.map": (jax.jit(lambda ps: jax.lax.map(grad, ps)), one_seed),
  }
  times = {}
  for name, (f, arg) in sides.items():
    jax.block_until_ready(f(arg))  # compile
    runs = []
    for _ in range(args.repeats):
      t = time.perf_counter()
      jax.block_until_ready(f(arg))
      runs.append(time.perf_counter() - t)
    times[name] = statistics.median(runs)
  for name, t in times.items():
    print(f"{name:8s} {t:7.3f} s per gradient step  ({t / times['plain']:.1f}x plain)")
  print(f"({jax.default_backend()}, {jax.device_count()} device(s))")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  sys.exit(main())
