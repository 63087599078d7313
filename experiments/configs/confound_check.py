r"""The headline comparison with its confounds removed: standardised inputs
and each activation's own initialiser.

  python scripts/sweep.py --config=experiments/configs/confound_check.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/confound \
      --config.data.data_dir=/data/tfds --config.data.download=False
  python scripts/report.py /tmp/actlab/confound

The tutorial feeds raw 0-255 pixels (the first convolution's pre-activations
have an SD of about 54, so bounded activations start saturated) and
initialises every network with Glorot uniform. Here the inputs are
standardised per channel and each family gets the initialiser derived for it:
He normal for the ReLU family (He et al. 2015), LeCun normal for SELU
(Klambauer et al. 2017), Glorot uniform for tanh and sigmoid (Glorot and
Bengio 2010). Everything else, the validation protocol included, is
activation_comparison.py's; compare the two rankings at the same seeds.
"""

import ml_collections

from actlab import presets
from actlab.config import base_config

INITIALISERS = presets.OWN_INITIALISER
DEFAULT_ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "selu", "gelu")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = presets.validation_protocol(base_config())
  c.data.input_scaling = "standardize"
  presets.apply_study_args(c, arg, DEFAULT_ACTIVATIONS)
  return c


def sweep(config: ml_collections.ConfigDict | None = None) -> dict:
  acts = (config or get_config()).activations
  unknown = [a for a in acts if a not in INITIALISERS]
  if unknown:
    raise ValueError(f"No initialiser family for {unknown}; add them to INITIALISERS.")
  return {
    "conditions": [
      {"name": a, "model.activation": a, "model.kernel_init": INITIALISERS[a]} for a in acts
    ],
    "baseline": "relu",
  }
