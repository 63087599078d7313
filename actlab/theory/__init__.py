"""What an activation does to a deep random network at initialisation.

>>> from actlab import theory
>>> theory.signal_propagation("tanh", weight_var=1.5, bias_var=0.05)
>>> theory.critical_weight_var("relu")          # 2.0: He initialisation
>>> nn.Dense(256, kernel_init=theory.critical_init("gelu"))
>>> theory.born_dead_probability(width=4, depth=20)

`signal_propagation` follows Poole et al. (2016) and Schoenholz et al.
(2017): the length map's fixed point q*, the per-layer gradient growth
chi_1, the correlation map's fixed point and slope, the depth scales and
the phase (ordered / critical / chaotic), from Gaussian expectations
computed to 1e-8 relative or better and checked (`actlab.theory.gaussian`).
It takes any elementwise activation: a catalogue spec string, an Entry, or
a function of one array. `born_dead_probability` estimates how often a
ReLU network is a constant function at initialisation (Lu et al. 2019).
"""

from actlab.theory.born_dead import BornDead, born_dead_bounds, born_dead_probability
from actlab.theory.functions import Elementwise, elementwise
from actlab.theory.gaussian import QuadratureError
from actlab.theory.propagation import (
    NoCriticalPoint,
    SignalPropagation,
    critical_init,
    critical_weight_var,
    gradient_growth,
    signal_propagation,
)

__all__ = [
    "BornDead",
    "Elementwise",
    "NoCriticalPoint",
    "QuadratureError",
    "SignalPropagation",
    "born_dead_bounds",
    "born_dead_probability",
    "critical_init",
    "critical_weight_var",
    "elementwise",
    "gradient_growth",
    "signal_propagation",
]
