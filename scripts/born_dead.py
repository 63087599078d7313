r"""Dead ReLU units at initialisation, by depth, width and initialiser.

  python scripts/born_dead.py --out=docs/runs/born_dead/born_dead.json \
      [--data_dir=/data/tfds]   # part 2 uses real CIFAR-10 images

Forward passes only. Two measurements:

1. Born dead (Lu et al. 2019, "Dying ReLU and Initialization"): a ReLU
   network is born dead when it is a constant function at initialisation,
   i.e. some hidden layer outputs zero for every input. With one input
   feature and zero biases (the flax/Keras default) a ReLU network is
   positively homogeneous, so it is constant exactly when it is dead at both
   x = +1 and x = -1: the check is exact, no input sampling. Estimated over
   `--trials` random initialisations per (depth, width, initialiser), with a
   95% Clopper-Pearson interval; next to it the single-input probability
   1 - (1 - 2^-N)^L that a fixed input dies somewhere in L layers of N units.
2. Dead units of actlab's MLP on CIFAR-10 at step 0: the fraction of hidden
   units whose pre-activation is <= 0 for every one of `--images` training
   images, per depth, for He normal and Glorot uniform, raw and standardised
   pixels, over `--seeds` seeds (mean and 95% t-interval).

With zero biases the sign pattern of a ReLU network does not depend on the
kernels' scale, so initialisers that differ only in scale (He vs LeCun vs
Glorot normal) give the same dead units in distribution; they differ in the
signal's size, which is what the vanishing-gradient study measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import theory  # noqa: E402

INITS = tuple(theory.born_dead.INITS)


def born_dead_probability(depth: int, width: int, trials: int, init: str, seed: int) -> dict:
  """Fraction of `trials` ReLU nets (1 input, `depth` hidden layers of
  `width`, zero biases) that are constant functions at initialisation
  (`actlab.theory.born_dead_probability`, exact +-1 check)."""
  r = theory.born_dead_probability(width, depth, trials=trials, init=init, seed=seed)
  return {
    "depth": depth,
    "width": width,
    "init": init,
    "trials": trials,
    "born_dead": r.probability,
    "ci": list(r.ci),
    "single_input_dies": r.bounds[1],
  }


def dead_units_at_init(images: np.ndarray, depths, seeds, width: int) -> list[dict]:
  """Dead-unit fraction of actlab's MLP at step 0, per depth, init, scaling."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from actlab import data, models  # pylint: disable=g-import-not-at-top

  mean, std = data.cifar10.channel_stats(images)
  inputs = {
    "raw": jnp.asarray(images, jnp.float32),
    "standardize": (jnp.asarray(images, jnp.float32) - mean) / std,
  }
  rows = []
  for scaling, x in inputs.items():
    for init in INITS:
      for depth in depths:
        model = models.MLP(
          activation=jax.nn.relu,
          depth=depth,
          width=width,
          kernel_init=getattr(jax.nn.initializers, init)(),
        )
        per_seed = []
        for seed in seeds:
          params = model.init(jax.random.key(seed), x[:1])["params"]
          h, dead = x.reshape(x.shape[0], -1), []
          for i in range(depth):  # the hidden layers, in order
            layer = params[models.layer_name(i)]
            z = h @ layer["kernel"] + layer["bias"]
            dead.append(float(jnp.mean(jnp.all(z <= 0, axis=0))))
            h = jax.nn.relu(z)
          per_seed.append(float(np.mean(dead)))
        m = float(np.mean(per_seed))
        ci = stats.ttest_1samp(per_seed, m).confidence_interval() if len(seeds) > 1 else None
        rows.append(
          {
            "scaling": scaling,
            "init": init,
            "depth": depth,
            "width": width,
            "seeds": list(seeds),
            "dead_fraction": per_seed,
            "mean": m,
            "ci": [ci.low, ci.high] if ci is not None and np.isfinite(ci.low) else [m, m],
          }
        )
        print(f"  {scaling:11s} {init:14s} depth {depth:2d}: dead at init {m:.3f}", flush=True)
  return rows


def _ints(text: str) -> list[int]:
  return [int(s) for s in text.split(",") if s]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
  parser.add_argument("--widths", default="2,3,4,5,8,16")
  parser.add_argument("--depths", default="1,2,3,5,10,20,30,50")
  parser.add_argument("--trials", type=int, default=2000)
  parser.add_argument("--data_dir", default="", help="TFDS data_dir with CIFAR-10 (part 2)")
  parser.add_argument("--mlp_depths", default="5,10,20,30")
  parser.add_argument("--mlp_width", type=int, default=128)
  parser.add_argument("--images", type=int, default=1000)
  parser.add_argument("--seeds", type=int, default=5)
  args = parser.parse_args(argv)
  t0 = time.time()
  born = []
  for init in INITS:
    for width in _ints(args.widths):
      for depth in _ints(args.depths):
        row = born_dead_probability(depth, width, args.trials, init, seed=depth * 1000 + width)
        born.append(row)
        print(
          f"{init:14s} width {width:3d} depth {depth:2d}: born dead {row['born_dead']:.3f}"
          f" [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]  single input {row['single_input_dies']:.3f}",
          flush=True,
        )
  result = {"born_dead": born, "command": " ".join(["python scripts/born_dead.py", *sys.argv[1:]])}
  if args.data_dir:
    from actlab import data  # pylint: disable=g-import-not-at-top

    split = data.load(f"train[:{args.images}]", data_dir=args.data_dir, download=False)
    result["mlp_dead_at_init"] = dead_units_at_init(
      split.images, _ints(args.mlp_depths), range(args.seeds), args.mlp_width
    )
  result["seconds"] = time.time() - t0
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=1) + "\n")
  print(f"wrote {args.out} ({result['seconds']:.0f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
