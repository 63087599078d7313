r"""Per-layer times of LeNet5 on XLA:CPU: the plain layers vs actlab.layers.

Each row is one of LeNet5's stages at batch 256 (conv + relu + pool, or conv +
relu + flatten + dense), jitted, in two formulations that compute the same
numbers: `plain` (nn.Conv, nn.max_pool, nn.Dense as models.LeNet5 runs them
on GPU/TPU) and `fast` (the blocked formulations of actlab.layers). Times are
medians over rounds in which the variants take turns, forward alone and
forward + gradient w.r.t. parameters and input (as in training).

  python scripts/profile_layers.py --rounds=7 --out=docs/benchmarks/layers_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actlab import layers, models

BATCH = 256


class PlainStage(nn.Module):
  """features@5x5 SAME conv -> relu -> 2x2 max-pool (or -> flatten -> dense)."""

  features: int
  dense: int = 0

  @nn.compact
  def __call__(self, x):
    z = nn.relu(nn.Conv(self.features, (5, 5), padding="SAME", name="conv")(x))
    if self.dense:
      return nn.Dense(self.dense, name="dense")(z.reshape(z.shape[0], -1))
    return nn.max_pool(z, (2, 2), (2, 2))


class FastStage(nn.Module):
  """The same stage through actlab.layers (input and output in the plain layout)."""

  features: int
  dense: int = 0
  dense_spatial: bool = False  # depth-to-space, then nn.Dense

  @nn.compact
  def __call__(self, x):
    z = nn.relu(layers.BlockedConv(self.features, name="conv")(layers.space_to_depth(x)))
    if not self.dense:
      return layers.group_max(z)
    if self.dense_spatial:
      z = layers.blocked_to_spatial(z)
      return nn.Dense(self.dense, name="dense")(z.reshape(z.shape[0], -1))
    return layers.BlockedDense(self.dense, name="dense")(z)


STAGES = {
  # name: (input H x W x C, plain module, fast variants)
  "conv 3->6 @32 + pool": ((32, 32, 3), PlainStage(6), {"blocked": FastStage(6)}),
  "conv 6->16 @16 + pool": ((16, 16, 6), PlainStage(16), {"blocked": FastStage(16)}),
  "conv 16->120 @8 + dense 84": (
    (8, 8, 16),
    PlainStage(120, dense=84),
    {
      "blocked, permuted dense": FastStage(120, dense=84),
      "blocked, depth-to-space + dense": FastStage(120, dense=84, dense_spatial=True),
    },
  ),
}


def _timer(module, shape, grad: bool):
  x = jax.random.normal(jax.random.key(0), (BATCH, *shape))
  params = module.init(jax.random.key(1), x)
  ct = jax.random.normal(jax.random.key(2), jax.eval_shape(module.apply, params, x).shape)
  if grad:
    f = jax.jit(jax.grad(lambda p, x: jnp.vdot(module.apply(p, x), ct), argnums=(0, 1)))
  else:
    f = jax.jit(module.apply)
  jax.block_until_ready(f(params, x))

  def run(iters: int) -> float:
    t = time.perf_counter()
    for _ in range(iters):
      out = f(params, x)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / iters * 1e3

  return run


def _model_timer(fast: bool):
  model = models.LeNet5(fast_layers=fast)
  return _timer(model, (32, 32, 3), grad=True), _timer(model, (32, 32, 3), grad=False)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--iters", type=int, default=10)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  rows = []
  for stage, (shape, plain, fast) in STAGES.items():
    variants = {"plain": plain, **fast}
    timers = {(v, g): _timer(m, shape, g) for v, m in variants.items() for g in (False, True)}
    times = {key: [] for key in timers}
    for _ in range(args.rounds):
      for key, run in timers.items():
        times[key].append(run(args.iters))
    for v in variants:
      fwd, both = (statistics.median(times[(v, g)]) for g in (False, True))
      rows.append({"stage": stage, "variant": v, "forward_ms": fwd, "forward_backward_ms": both})
  timers = {}
  for fast in (False, True):
    grad, fwd = _model_timer(fast)
    timers[("plain" if not fast else "fast", False)] = fwd
    timers[("plain" if not fast else "fast", True)] = grad
  times = {key: [] for key in timers}
  for _ in range(args.rounds):
    for key, run in timers.items():
      times[key].append(run(args.iters))
  for v in ("plain", "fast"):
    fwd, both = (statistics.median(times[(v, g)]) for g in (False, True))
    rows.append({"stage": "LeNet5", "variant": v, "forward_ms": fwd, "forward_backward_ms": both})
  print(f"| stage | variant | forward ms | forward + backward ms | (median of {args.rounds}) |")
  print("|---|---|---:|---:|---|")
  for r in rows:
    fwd, both = r["forward_ms"], r["forward_backward_ms"]
    print(f"| {r['stage']} | {r['variant']} | {fwd:.2f} | {both:.2f} | |")
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump({"batch_size": BATCH, "rounds": args.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
