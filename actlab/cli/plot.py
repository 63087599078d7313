r"""Figures of activations and their derivatives.

One PNG per activation (f and f' on a shared axis), and a grid of all the
requested activations in one PNG:

  python scripts/plot_activations.py --activations=sigmoid,tanh,relu \
      --out_dir=docs/figures/activations --grid_name=tutorial.png
  python scripts/plot_activations.py --activations=all --no_singles \
      --out_dir=docs/figures/activations --grid_name=catalogue.png

`--activations=all` is every elementwise entry of the registry. Specs with
parameters work too: --activations='elu(alpha=0.5),leaky_relu(negative_slope=0.2)'.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from actlab import activations  # noqa: E402
from actlab.cli import console  # noqa: E402


def split_specs(text: str) -> list[str]:
  """Splits on commas outside parentheses: 'elu(alpha=1),relu' -> 2 specs."""
  specs, depth, start = [], 0, 0
  for i, ch in enumerate(text):
    depth += {"(": 1, ")": -1}.get(ch, 0)
    if ch == "," and depth == 0:
      specs.append(text[start:i].strip())
      start = i + 1
  specs.append(text[start:].strip())
  return [s for s in specs if s]


def file_name(spec: str) -> str:
  """A file-system-safe name: 'elu(alpha=0.5)' -> 'elu_alpha_0.5.png'."""
  stem = re.sub(r"[^A-Za-z0-9_.]+", "_", spec).strip("_")
  return f"{stem}.png"


def draw(ax: plt.Axes, spec: str, x: np.ndarray, compact: bool = False) -> None:
  """f and f' of `spec` on `ax`, with labelled axes and a legend."""
  y = np.asarray(activations.get(spec)(jnp.asarray(x, jnp.float32)))
  d = np.asarray(activations.derivative(spec)(jnp.asarray(x, jnp.float32)))
  ax.axhline(0, color="0.8", lw=0.8)
  ax.axvline(0, color="0.8", lw=0.8)
  ax.plot(x, y, color="C0", lw=2, label="f(x)")
  ax.plot(x, d, color="C1", lw=1.5, ls="--", label="f'(x)")
  for k, dk in activations.kinks(spec).items():
    if x[0] <= k <= x[-1]:
      ax.plot([k], [dk], "o", color="C1", ms=4 if compact else 6,
              label=None if compact else "f' used at a kink")
  ax.set_title(activations.canonical(spec), fontsize=9 if compact else 12)
  ax.set_xlabel("x", fontsize=8 if compact else 10)
  ax.set_ylabel("value", fontsize=8 if compact else 10)
  if compact:
    ax.tick_params(labelsize=7)
  ax.legend(fontsize=7 if compact else 9, loc="best")
  ax.grid(alpha=0.3)


def single(spec: str, x: np.ndarray, path: Path) -> None:
  fig, ax = plt.subplots(figsize=(6, 4.2))
  draw(ax, spec, x)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def grid(specs: list[str], x: np.ndarray, path: Path) -> None:
  cols = min(len(specs), 6)
  rows = math.ceil(len(specs) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False)
  for ax, spec in zip(axes.flat, specs):
    draw(ax, spec, x, compact=True)
  for ax in list(axes.flat)[len(specs):]:
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--activations", default="sigmoid,tanh,relu",
                      help="comma-separated specs, or 'all'")
  parser.add_argument("--out_dir", default="docs/figures/activations")
  parser.add_argument("--grid_name", default="grid.png",
                      help="file name of the grid of all requested activations")
  parser.add_argument("--no_singles", action="store_true",
                      help="write only the grid, not one PNG per activation")
  parser.add_argument("--xlim", type=float, default=5.0, help="plot x in [-xlim, xlim]")
  args = parser.parse_args(argv)

  specs = (activations.names() if args.activations == "all"
           else split_specs(args.activations))
  for s in specs:
    activations.derivative(s)  # fail early: unknown or not elementwise
  out = Path(args.out_dir)
  out.mkdir(parents=True, exist_ok=True)
  x = np.linspace(-args.xlim, args.xlim, 2001)
  written = []
  if not args.no_singles:
    for spec in specs:
      single(spec, x, out / file_name(spec))
      written.append(out / file_name(spec))
  if len(specs) > 1:
    grid(specs, x, out / args.grid_name)
    written.append(out / args.grid_name)
  for p in written:
    print(p)
  return 0


def run() -> None:
  """The console script's entry point."""
  console(main)


if __name__ == "__main__":
  run()
