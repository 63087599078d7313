r"""Speed of every activation: forward and forward+backward, against jax.nn.

For each activation, times the jitted forward pass f(x) and the jitted
forward+backward pass (f(x) and the vector-Jacobian product with a cotangent
g, as a training step needs them) on `--size` float32 values. Reports the
median over `--repeats` as milliseconds and as ratios to (a) a memory-bound
copy of the same size (y = -x) and (b) the jax.nn function of the same name
where one exists. actlab and jax.nn take turns within each repeat, so drift
in a shared machine's speed hits both alike.

  python scripts/benchmark_activations.py --out=activations_bench.json
  python scripts/benchmark_activations.py --size=65536 --repeats=2 \
      --activations=relu,gelu

Prints a markdown table; `--out` also writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from actlab import activations  # noqa: E402

# jax.nn functions with the same definition and default parameters.
JAX_NN = {
    "identity": jax.nn.identity,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "sparse_plus": jax.nn.sparse_plus,
    "sparse_sigmoid": jax.nn.sparse_sigmoid,
    "soft_sign": jax.nn.soft_sign,
    "silu": jax.nn.silu,
    "log_sigmoid": jax.nn.log_sigmoid,
    "leaky_relu": jax.nn.leaky_relu,
    "hard_sigmoid": jax.nn.hard_sigmoid,
    "hard_silu": jax.nn.hard_silu,
    "hard_tanh": jax.nn.hard_tanh,
    "tanh": jax.nn.tanh,
    "elu": jax.nn.elu,
    "celu": jax.nn.celu,
    "selu": jax.nn.selu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu(approximate=True)": functools.partial(jax.nn.gelu, approximate=True),
    "squareplus": jax.nn.squareplus,
    "mish": jax.nn.mish,
    "glu": jax.nn.glu,
}


def _forward(f):
  return jax.jit(f)


def _forward_backward(f):
  def run(x, g):
    y, vjp = jax.vjp(f, x)
    # glu halves its input: its cotangent is the first half of g.
    return y, vjp(g[: y.size].reshape(y.shape))[0]

  return jax.jit(run)


def _time(fn, *args) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def _median_ms(samples: list[float]) -> float:
  return 1e3 * statistics.median(samples)


def bench(spec: str, x: jax.Array, g: jax.Array, repeats: int, copy_ms: float) -> dict:
  """Median forward and forward+backward times of `spec` and its jax.nn peer."""
  ours = activations.get(spec)
  peer = JAX_NN.get(spec)
  runs = {"actlab": (_forward(ours), _forward_backward(ours))}
  if peer is not None:
    runs["jax.nn"] = (_forward(peer), _forward_backward(peer))
  for fwd, fb in runs.values():  # compile and warm up
    for _ in range(2):
      _time(fwd, x)
      _time(fb, x, g)
  samples = {k: ([], []) for k in runs}
  for _ in range(repeats):
    for k, (fwd, fb) in runs.items():
      samples[k][0].append(_time(fwd, x))
      samples[k][1].append(_time(fb, x, g))
  row = {"activation": spec}
  for k, (f_s, fb_s) in samples.items():
    row[f"{k}_forward_ms"] = _median_ms(f_s)
    row[f"{k}_forward_backward_ms"] = _median_ms(fb_s)
  for part in ("forward", "forward_backward"):
    row[f"{part}_vs_copy"] = row[f"actlab_{part}_ms"] / copy_ms
    if peer is not None:
      row[f"{part}_vs_jax_nn"] = row[f"actlab_{part}_ms"] / row[f"jax.nn_{part}_ms"]
  return row


def table(rows: list[dict], copy_ms: float) -> str:
  lines = [
      f"Copy of the same size: {copy_ms:.3f} ms. Ratios: actlab time / copy time"
      " and actlab time / jax.nn time (<= 1.05 is the target).",
      "",
      "| activation | fwd ms | fwd / copy | fwd / jax.nn | fwd+bwd ms"
      " | fwd+bwd / copy | fwd+bwd / jax.nn |",
      "|---|---:|---:|---:|---:|---:|---:|",
  ]
  fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
  for r in rows:
    lines.append(
        f"| `{r['activation']}` | {r['actlab_forward_ms']:.3f}"
        f" | {fmt(r['forward_vs_copy'])} | {fmt(r.get('forward_vs_jax_nn'))}"
        f" | {r['actlab_forward_backward_ms']:.3f}"
        f" | {fmt(r['forward_backward_vs_copy'])}"
        f" | {fmt(r.get('forward_backward_vs_jax_nn'))} |"
    )
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--size", type=int, default=2**24, help="values per call")
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument(
      "--activations", default="all",
      help="comma-separated specs, or 'all' (every elementwise entry, the"
      " approximate gelu and glu)",
  )
  parser.add_argument("--out", default=None, help="write the results as JSON here")
  args = parser.parse_args(argv)

  if args.activations == "all":
    specs = activations.names() + ["gelu(approximate=True)", "glu"]
  else:
    specs = [s.strip() for s in args.activations.split(",") if s.strip()]
  for s in specs:  # fail early on a bad spec
    if activations.is_module(activations.get(s)):
      parser.error(f"{s} is a flax module with parameters; only functions are timed.")
  kx, kg = jax.random.split(jax.random.key(0))
  # Spread over both branches of every piecewise form and into the tails.
  x = 4.0 * jax.random.normal(kx, (args.size,), jnp.float32)
  g = jax.random.normal(kg, (args.size,), jnp.float32)
  copy = jax.jit(lambda v: -v)
  for _ in range(3):
    _time(copy, x)
  copy_ms = _median_ms([_time(copy, x) for _ in range(max(args.repeats, 5))])
  rows = []
  for spec in specs:
    rows.append(bench(spec, x, g, args.repeats, copy_ms))
    print(f"{spec}: done", file=sys.stderr, flush=True)
  print(table(rows, copy_ms))
  if args.out:
    result = {
        "size": args.size,
        "dtype": "float32",
        "repeats": args.repeats,
        "copy_ms": copy_ms,
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
  worst = lambda r: max(  # noqa: E731
      r.get("forward_vs_jax_nn", 0), r.get("forward_backward_vs_jax_nn", 0)
  )
  slow = [r["activation"] for r in rows if worst(r) > 1.05]
  if slow:
    print(f"\nSlower than jax.nn by more than 5%: {', '.join(slow)}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
