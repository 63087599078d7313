r"""Input scaling x initialiser as a 2x2 factorial, per activation.

  python scripts/sweep.py --config=experiments/configs/factorial_confound.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/factorial \
      --config.data.data_dir=/data/tfds --config.data.download=False
  python scripts/report.py /tmp/actlab/factorial

confound_check.py changes two things at once (standardised inputs and each
activation's own initialiser). Here each activation runs in all four cells
(raw or standardised inputs) x (Glorot uniform or its own initialiser,
actlab.presets.OWN_INITIALISER), on the proxy budget of proxy_comparison.py,
so each factor's effect and their interaction are estimated separately,
paired by seed. Conditions are `<activation>_<raw|std>_<glorot|own>`.
The declared family: per activation, the scaling effect, the initialiser
effect and the interaction (3 contrasts x 6 activations = 18). tanh and
sigmoid are not in it: their own initialiser is Glorot uniform, so their
two initialiser cells would be the same runs.
"""

import ml_collections

from actlab import presets

DEFAULT_ACTIVATIONS = ("relu", "elu", "selu", "gelu", "silu", "mish")
SCALINGS = {"raw": "raw", "std": "standardize"}


def condition_name(activation: str, scaling: str, init: str) -> str:
  return f"{activation}_{scaling}_{init}"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return presets.proxy_study(arg, DEFAULT_ACTIVATIONS)


def sweep(config: ml_collections.ConfigDict | None = None) -> dict:
  acts = [a.split("(")[0] for a in (config or get_config()).activations]
  conditions = []
  for a in acts:
    inits = {"glorot": "glorot_uniform", "own": presets.own_initialiser(a)}
    if inits["own"] == inits["glorot"]:
      raise ValueError(
        f"{a}'s own initialiser is Glorot uniform, so its initialiser cells would repeat"
        " the same runs; leave it out of acts= (the scaling effect alone is in"
        " confound_check.py)."
      )
    for s, scaling in SCALINGS.items():
      for i, init in inits.items():
        conditions.append(
          {
            "name": condition_name(a, s, i),
            "model.activation": a,
            "data.input_scaling": scaling,
            "model.kernel_init": init,
          }
        )
  return {
    "conditions": conditions,
    "baseline": condition_name(acts[0], "raw", "glorot"),
    # Per activation: the 2x2 contrasts over (data.input_scaling, model.kernel_init).
    "factorial": {
      "group": "model.activation",
      "factors": ["data.input_scaling", "model.kernel_init"],
    },
  }
