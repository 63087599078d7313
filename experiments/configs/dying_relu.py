r"""Dying ReLU: the fraction of dead units over training, relu vs leaky_relu vs elu.

A unit is dead when its derivative is at most 1% of the activation's
maximum slope for every example of a training batch, near-dead when that
holds for its mean over the batch (actlab.diagnostics). At Adam's usual 1e-3
few ReLU units die; at 1e-2 most do (5 seeds: docs/findings.md). Leaky
ReLU's negative side has slope 0.01, exactly the threshold, so its "dead"
units still pass that small gradient.

  python scripts/sweep.py --config=experiments/configs/dying_relu.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/dying --config.data.data_dir=/tmp/tfds
  python scripts/report.py /tmp/actlab/dying

Units born dead at initialisation, by depth, width and initialiser (forward
passes only): scripts/born_dead.py.

Measured: docs/findings.md.
"""

import ml_collections

from actlab import presets
from actlab.config import base_config

ACTIVATIONS = ("relu", "leaky_relu", "elu")
LEARNING_RATES = (1e-3, 1e-2)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """MLP, 5 hidden layers of 256, standardised inputs, diagnostics on."""
  c = presets.validation_protocol(base_config())
  c.model.name = "mlp"
  c.model.mlp_depth = 5
  c.model.mlp_width = 256
  c.model.kernel_init = "he_normal"
  c.data.input_scaling = "standardize"
  c.num_epochs = 3
  c.diagnostics.enabled = True
  c.diagnostics.every_steps = 13
  args = presets.apply_args(c, arg)
  c.optim.learning_rate = float(args.pop("lr", c.optim.learning_rate))
  presets.reject_unknown(args, "lr=, " + presets.COMMON_ARGS)
  return c


def sweep() -> list[dict]:
  return [
    {"name": f"{act}_lr{lr:g}", "model.activation": act, "optim.learning_rate": lr}
    for lr in LEARNING_RATES
    for act in ACTIVATIONS
  ]
