r"""Collapses a trained identity-activation MLP into one linear map and checks it.

  python scripts/linear_collapse.py /tmp/actlab/collapse/identity [--out=result.json]

Multiplies the run's trained kernels (and folds its biases) into a single
(W, b), then compares x W + b with the network's outputs on the whole eval
split: the largest absolute difference of the logits, how often the two
disagree on the predicted class, and both accuracies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import build, diagnostics, train  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdir", type=Path)
  parser.add_argument("--out", type=Path, default=None)
  args = parser.parse_args()
  config, state = train.restore_run(args.workdir)
  if config.model.name != "mlp" or config.model.activation != "identity":
    sys.exit(
      f"error: {args.workdir} is a {config.model.name} with {config.model.activation};"
      " the collapse applies to an MLP with the identity activation."
    )
  train_split, evals, _ = build.load_splits(config)
  preprocess = build.make_preprocess(config, train_split.images)
  params = jax.device_get(state.params)
  w, b = diagnostics.collapse_linear(params)

  @jax.jit
  def both(x_u8):
    x = preprocess(x_u8)
    net = state.apply_fn({"params": params}, x)
    lin = x.reshape(x.shape[0], -1) @ w + b[None, :]
    return net, lin

  nets, lins = zip(*(both(evals.images[i : i + 1000]) for i in range(0, len(evals.images), 1000)))
  net, lin = np.concatenate(nets), np.concatenate(lins)
  labels = evals.labels
  result = {
    "workdir": str(args.workdir),
    "layers": int(config.model.mlp_depth) + 1,
    "collapsed_shape": list(w.shape),
    "max_abs_logit_difference": float(np.abs(net - lin).max()),
    "max_abs_logit": float(np.abs(net).max()),
    "prediction_disagreements": int((net.argmax(1) != lin.argmax(1)).sum()),
    "network_accuracy": float((net.argmax(1) == labels).mean()),
    "collapsed_accuracy": float((lin.argmax(1) == labels).mean()),
    "examples": int(len(labels)),
  }
  print(json.dumps(result, indent=2))
  if args.out:
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
  main()
