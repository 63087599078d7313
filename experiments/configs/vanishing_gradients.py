r"""Vanishing gradients: a deep MLP's per-layer gradient norms, by activation.

One run is one (activation, initialiser, depth); `sweep()` lists the study:
sigmoid, tanh and relu with Glorot uniform (the tutorial's Keras default) and
relu with He normal (He et al. 2015), at depths 5 to 30. Run it all:

  python scripts/sweep.py --config=experiments/configs/vanishing_gradients.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/vanishing --config.data.data_dir=/tmp/tfds
  python scripts/report.py /tmp/actlab/vanishing

or one run:

  python experiments/main.py \
      --config=experiments/configs/vanishing_gradients.py:act=sigmoid,depth=20 \
      --workdir=/tmp/actlab/vanishing/sigmoid_d20

Expected (the tutorial's claim): at initialisation the first layer's gradient
is smaller than the last's by orders of magnitude for sigmoid, less so for
tanh, and about the same for relu; the gap grows with depth. Measured:
docs/findings.md.
"""

import ml_collections

from actlab import presets
from actlab.config import base_config

# (name, activation, kernel initialiser)
CONDITIONS = (
  ("sigmoid", "sigmoid", "glorot_uniform"),
  ("tanh", "tanh", "glorot_uniform"),
  ("relu", "relu", "glorot_uniform"),
  ("relu_he", "relu", "he_normal"),
)
DEPTHS = (5, 10, 20, 30)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """MLP of `depth` hidden layers (128 wide), Glorot init, diagnostics on."""
  c = presets.validation_protocol(base_config())
  c.model.name = "mlp"
  c.model.mlp_width = 128
  c.data.input_scaling = "standardize"
  c.num_epochs = 2
  c.diagnostics.enabled = True
  c.diagnostics.every_steps = 13  # 15 records per 195-step epoch, step 0 included
  args = presets.apply_args(c, arg)
  c.model.mlp_depth = args.pop("depth", 20)
  presets.reject_unknown(args, "depth=, " + presets.COMMON_ARGS)
  return c


def sweep() -> list[dict]:
  """(name, overrides) for every run of the study."""
  return [
    {
      "name": f"{name}_d{depth:02d}",
      "model.activation": act,
      "model.kernel_init": init,
      "model.mlp_depth": depth,
    }
    for name, act, init in CONDITIONS
    for depth in DEPTHS
  ]
