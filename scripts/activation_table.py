r"""Writes docs/activations.md: the catalogue with every entry's facts.

  python scripts/activation_table.py --out=docs/activations.md

Everything in the page comes from the registry (`actlab.activations.describe`
and each entry's docstring), so rerun this after adding an activation.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import activations  # noqa: E402
from actlab.activations import checks, metadata  # noqa: E402

COMMAND = "python scripts/activation_table.py --out=docs/activations.md"
PLOT_TRIO = (
    "python scripts/plot_activations.py --activations=sigmoid,tanh,relu"
    " --out_dir=docs/figures/activations --grid_name=tutorial.png"
)
PLOT_ALL = (
    "python scripts/plot_activations.py --activations=all --no_singles"
    " --out_dir=docs/figures/activations --grid_name=catalogue.png"
)
FIGURES = "figures/activations"

# Entries whose float64 accuracy is bounded as a mixed forward/backward error
# (tests/test_activations_numerics.py, MIXED), and why.
FLOAT64_NOTES = {
    "gelu": "exact form: XLA's erfc rounds z^2 inside exp(-z^2), so the left"
    " tail loses about x^2/2 ulp; the approximate form rounds its cubic inner"
    " argument (error about eps |x f'(x)|).",
    "gcu": "periodic: near the zeros of cos x only absolute accuracy"
    " O(eps |x|) is possible.",
    "sine": "periodic: as gcu.",
    "snake": "periodic: 1 + sin(2ax) has double zeros.",
}

NOT_INCLUDED = [
    ("softmax, log_softmax, softmin, Softmax2d, logsumexp, logmeanexp",
     "normalise across an axis: output layers, not per-unit activations"),
    ("sparsemax (Keras), standardize (jax.nn)",
     "projections across an axis, as above"),
    ("CReLU", "concatenates relu(x) and relu(-x): doubles the width, which a"
     " layer-wise width multiplier does not express (its next layer would need"
     " twice the inputs)"),
    ("MultiheadAttention and other torch.nn 'activation' modules with weights",
     "layers rather than activations"),
]


# Defaults that differ between actlab and its peers. Parameter defaults are
# read from the installed packages' signatures (jax 0.10.2, torch 2.13.0,
# keras 3.15.1 here; `--verify` reads them again from whatever is installed);
# the other cells were measured with the same versions, Keras with its JAX
# backend (kink derivatives and integer dtypes are backend-dependent there).
PEERS = ("jax.nn", "PyTorch", "Keras 3")
# (row, {peer: (object path, parameter)}) for defaults read from signatures.
SIGNATURE_DEFAULTS = [
    ("gelu(approximate=...)", {
        "jax.nn": ("jax.nn.gelu", "approximate"),
        "PyTorch": ("torch.nn.GELU", "approximate"),
        "Keras 3": ("keras.activations.gelu", "approximate"),
    }),
    ("leaky_relu negative slope", {
        "jax.nn": ("jax.nn.leaky_relu", "negative_slope"),
        "PyTorch": ("torch.nn.LeakyReLU", "negative_slope"),
        "Keras 3": ("keras.activations.leaky_relu", "negative_slope"),
    }),
    ("elu alpha", {
        "jax.nn": ("jax.nn.elu", "alpha"), "PyTorch": ("torch.nn.ELU", "alpha"),
        "Keras 3": ("keras.activations.elu", "alpha"),
    }),
    ("celu alpha", {
        "jax.nn": ("jax.nn.celu", "alpha"), "PyTorch": ("torch.nn.CELU", "alpha"),
        "Keras 3": ("keras.activations.celu", "alpha"),
    }),
    ("squareplus b", {
        "jax.nn": ("jax.nn.squareplus", "b"), "Keras 3": ("keras.activations.squareplus", "b"),
    }),
    ("hard_shrink threshold", {
        "PyTorch": ("torch.nn.Hardshrink", "lambd"),
        "Keras 3": ("keras.activations.hard_shrink", "threshold"),
    }),
    ("soft_shrink threshold", {
        "PyTorch": ("torch.nn.Softshrink", "lambd"),
        "Keras 3": ("keras.activations.soft_shrink", "threshold"),
    }),
    ("rrelu (lower, upper)", {
        "PyTorch": ("torch.nn.RReLU", "lower,upper"),
    }),
]
# Our value for each signature row, from the registry.
OURS = {
    "gelu(approximate=...)": ("gelu", "approximate"),
    "leaky_relu negative slope": ("leaky_relu", "negative_slope"),
    "elu alpha": ("elu", "alpha"),
    "celu alpha": ("celu", "alpha"),
    "squareplus b": ("squareplus", "b"),
    "hard_shrink threshold": ("hard_shrink", "threshold"),
    "soft_shrink threshold": ("soft_shrink", "threshold"),
    "rrelu (lower, upper)": ("rrelu", "lower,upper"),
}
# What those signatures say (jax 0.10.2, torch 2.13.0, keras 3.15.1).
RECORDED = {
    ("gelu(approximate=...)", "jax.nn"): "True",
    ("gelu(approximate=...)", "PyTorch"): "'none'",
    ("gelu(approximate=...)", "Keras 3"): "False",
    ("leaky_relu negative slope", "jax.nn"): "0.01",
    ("leaky_relu negative slope", "PyTorch"): "0.01",
    ("leaky_relu negative slope", "Keras 3"): "0.2",
    ("elu alpha", "jax.nn"): "1.0",
    ("elu alpha", "PyTorch"): "1.0",
    ("elu alpha", "Keras 3"): "1.0",
    ("celu alpha", "jax.nn"): "1.0",
    ("celu alpha", "PyTorch"): "1.0",
    ("celu alpha", "Keras 3"): "1.0",
    ("squareplus b", "jax.nn"): "4",
    ("squareplus b", "Keras 3"): "4",
    ("hard_shrink threshold", "PyTorch"): "0.5",
    ("hard_shrink threshold", "Keras 3"): "0.5",
    ("soft_shrink threshold", "PyTorch"): "0.5",
    ("soft_shrink threshold", "Keras 3"): "0.5",
    ("rrelu (lower, upper)", "PyTorch"): "0.125, 0.3333333333333333",
}
# What a value means, where it is not plain.
MEANING = {"True": "True (tanh form)", "False": "False (exact)", "'none'": "'none' (exact)"}
# Measured behaviour (same versions): row -> (actlab, jax.nn, PyTorch, Keras 3).
MEASURED = [
    ("leaky_relu f'(0)", "1", "1", "0.01", "1"),
    ("hard_tanh f'(-1), f'(1)", "1, 1", "1, 1", "0, 0", "1, 1"),
    ("relu f'(0)", "0", "0", "0", "0"),
    ("hard_sigmoid, hard_silu", "relu6(x + 3) / 6, x times it", "same", "same", "same"),
    ("selu constants", "scale 1.0507, alpha 1.6733", "same", "same", "same"),
    ("softplus", "log(1 + exp(x))", "same", "x for beta x > 20 (threshold=20)", "same"),
    ("threshold", "threshold=1.0, value=0.0", "–", "no defaults", "no defaults"),
    ("prelu", "a slope per channel, init 0.25", "– (flax nn.PReLU: one slope, init 0.01)",
     "one slope, init 0.25", "a slope per element, init 0 (layers.PReLU)"),
    ("LeakyReLU layer slope", "–", "–", "0.01", "0.3 (layers.LeakyReLU)"),
    ("integer inputs", "relu, hard_tanh, identity, abs keep the dtype; others float32",
     "relu, hard_tanh, identity keep it; sigmoid, silu refuse; others float32",
     "relu, hardtanh keep it; sigmoid float32",
     "relu keeps it; sigmoid refuses (JAX backend)"),
]


def _ours(row: str) -> str:
  name, params = OURS[row]
  e = activations.entry(name)
  return ", ".join(repr(e.params[p].default) for p in params.split(","))


def read_peer(path: str, params: str) -> str:
  """The default of `params` in the signature of the object at `path`."""
  import importlib
  import inspect

  module, _, attr = path.rpartition(".")
  obj = getattr(importlib.import_module(module), attr)
  sig = inspect.signature(obj.__init__ if isinstance(obj, type) else obj)
  return ", ".join(repr(sig.parameters[p].default) for p in params.split(","))


def verify_peers() -> list[str]:
  """Rows whose recorded peer defaults differ from the installed packages."""
  problems = []
  for row, cells in SIGNATURE_DEFAULTS:
    for peer, (path, params) in cells.items():
      try:
        got = read_peer(path, params)
      except ImportError as e:
        problems.append(f"{row} / {peer}: cannot import ({e})")
        continue
      if got != RECORDED[(row, peer)]:
        problems.append(f"{row} / {peer}: recorded {RECORDED[(row, peer)]}, installed {got}")
  return problems


def peers_table() -> str:
  lines = ["| | actlab | " + " | ".join(PEERS) + " |", "|---" * (2 + len(PEERS)) + "|"]
  for row, cells in SIGNATURE_DEFAULTS:
    cells = [_ours(row)] + [RECORDED.get((row, p), "–") for p in PEERS]
    lines.append(f"| {row} | " + " | ".join(MEANING.get(c, c) for c in cells) + " |")
  for row, *values in MEASURED:
    lines.append(f"| {row} | " + " | ".join(values) + " |")
  return "\n".join(lines)


def _num(v: float) -> str:
  if math.isinf(v):
    return "∞" if v > 0 else "-∞"
  if v == int(v) and abs(v) < 1e6:
    return str(int(v))
  return f"{v:.4g}"


def _doc(name: str) -> str:
  e = activations.entry(name)
  doc = (e.module.__doc__ if e.kind == "module" else e.fn.__doc__) or ""
  first = doc.strip().split("\n\n")[0]
  return re.sub(r"\s+", " ", first).replace("|", "\\|")


def _params(name: str) -> str:
  e = activations.entry(name)
  parts = []
  for k, p in e.params.items():
    text = f"{k}={p.default!r}"
    if p.choices:
      text += f" (one of {', '.join(map(repr, p.choices))})"
    elif p.requirement:
      text += f" ({p.requirement})"
    parts.append(text)
  return ", ".join(parts) or "–"


def facts_table() -> str:
  lines = [
      "| name | aliases | kind | f(x) | range | monotonic | smoothness"
      " | zero-centred | max \\|f'\\| (at x) | saturates | f' at kinks | learnable |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for name in activations.names(kind="all"):
    d = activations.describe(name)
    kinks = ", ".join(f"{_num(x)}: {_num(v)}" for x, v in d.kinks.items()) or "–"
    summary = d.summary.replace("|", "\\|")
    lines.append(
        f"| `{name}` | {', '.join(f'`{a}`' for a in d.aliases) or '–'} | {d.kind}"
        f" | {summary} | ({_num(d.range[0])}, {_num(d.range[1])})"
        f" | {'yes' if d.monotonic else 'no'} | {d.smoothness}"
        f" | {'yes' if d.zero_centred else 'no'}"
        f" | {_num(d.max_slope)} ({_num(d.max_slope_at)}) | {d.saturates}"
        f" | {kinks} | {'yes' if d.learnable else 'no'} |"
    )
  return "\n".join(lines)


def reference_table() -> str:
  lines = ["| name | parameters (default) | definition and source |", "|---|---|---|"]
  for name in activations.names(kind="all"):
    lines.append(f"| `{name}` | {_params(name)} | {_doc(name)} |")
  return "\n".join(lines)


def page() -> str:
  n_all = len(activations.names(kind="all"))
  n_elem = len(activations.names())
  n_alias = len(activations.names(include_aliases=True, kind="all")) - n_all
  notes = "\n".join(f"- `{k}`: {v}" for k, v in FLOAT64_NOTES.items())
  missing = "\n".join(f"- {what}: {why}." for what, why in NOT_INCLUDED)
  # The bullet list of definitions in the metadata module's docstring.
  conventions = metadata.__doc__.split("\n\n", 1)[1].split("\n", 1)[1].strip()
  # The bullet list of checks in the checks module's docstring.
  check_list = checks.__doc__.split("(`ALL_CHECKS`):", 1)[1].split("`CHEAP_CHECKS`")[0].strip()
  return f"""<!-- Generated by `{COMMAND}`; edit the registry, not this file. -->

# Activation catalogue

Generated by `{COMMAND}`.

{n_all} entries ({n_elem} elementwise functions, glu, and the learnable modules),
plus {n_alias} aliases. Any entry is a spec string for `actlab.activations.get`
and for `--config.model.activation`: `relu`, `elu(alpha=0.5)`,
`threshold(threshold=0.1, value=0.0)`, `prelu(mode='shared')`,
`maxout(k=3)`. `actlab.activations.describe(spec)` returns the facts below
for any spec, parameters included.

![sigmoid, tanh and relu with their derivatives]({FIGURES}/tutorial.png)

One figure per function: [sigmoid]({FIGURES}/sigmoid.png),
[tanh]({FIGURES}/tanh.png), [relu]({FIGURES}/relu.png); every elementwise
entry: [catalogue.png]({FIGURES}/catalogue.png). Made with

```bash
{PLOT_TRIO}
{PLOT_ALL}
```

## Facts

Each entry's facts, for its default parameters (learnable modules: at their
initial parameters; RReLU: in evaluation). What the columns mean:

{conventions}

The tests hold every elementwise entry to these claims on a dense float64
grid, check its analytic derivative against `jax.grad` and finite
differences (`check_grads`, second order where it is C2) and its kink
values.

{facts_table()}

## Definitions and sources

{reference_table()}

## Using them in a model

Elementwise entries are plain jitted functions, `jax.grad`-able, with their
analytic derivative as the `custom_jvp` rule. glu and the modules change
what a model must provide:

- `glu` splits the last axis into halves a, b and returns a * sigmoid(b).
  The layer before it must produce twice the units:
  `activations.width_multiplier(activations.get('glu'))` is 2.
- `maxout(k=K)` takes the max over groups of K consecutive units, so the
  layer before it must be K times wider (`width_multiplier` is K). It has no
  parameters itself: a Dense layer with n inputs and m outputs followed by
  maxout holds K (n + 1) m parameters. LeNet5 with `maxout(k=2)` (or glu)
  has 2 * 696,196 + 850 = 1,393,242 parameters instead of 697,046.
- `prelu(mode=...)` learns the negative slope: one per layer ('shared', 4
  parameters in LeNet5), per channel ('channel', 226) or per element
  ('element', 18,004). `swish_beta(mode=...)` learns beta likewise.
- `rrelu(lower=..., upper=...)` draws its negative slope per element from
  U(lower, upper) when `train=True` and uses the mean slope otherwise (the
  default, so existing callers see a fixed function). Training needs the
  'rrelu' RNG stream:
  `model.apply(variables, x, train=True, rngs={{'rrelu': key}})`.

`actlab.models.LeNet5(activation=activations.get(spec))` handles all of
these: it widens its hidden layers by the width multiplier and creates one
module per hidden layer (`prelu`, `prelu_1`, ...), whose parameters appear in
`models.summary` and `models.layer_table`.

## Like jax.nn

Every entry is an attribute of `actlab.activations`, listed by `dir()` and
importable by name, with its docstring: `activations.relu(x)`,
`activations.leaky_relu(x, negative_slope=0.2)` (parameters are Python
values; each new value compiles once), `from actlab.activations import
gelu`. An attribute without parameters is the very object
`activations.get(name)` returns; a learnable entry's attribute is its Module
factory (`activations.prelu(mode='shared')` is a module). `activations.get`
passes what a model can use directly through unchanged: any callable
(`get(jax.nn.gelu) is jax.nn.gelu`), a flax Module class or factory, a
Module instance.

Integer inputs: `relu`, `hard_tanh`, `identity` and `abs` keep the integer
dtype, as jax.nn's relu, hard_tanh and identity do; every other entry
computes in the default float type (jax.nn's sigmoid and silu refuse
integers, its others return float32 as well). `jax.grad` needs float inputs
either way.

## Defaults versus jax.nn, PyTorch and Keras

Where a default differs, a model ported from a peer behaves differently
unless the spec says so: `gelu(approximate=True)` is jax.nn's default, and
`leaky_relu(negative_slope=0.2)` Keras's. The first rows are the peers'
signature defaults, read from jax 0.10.2, torch 2.13.0 and keras 3.15.1
(`python scripts/activation_table.py --verify` reads them again from the
installed versions); the others were measured with the same versions,
Keras with its JAX backend.

{peers_table()}

## Your own activations

`activations.check(spec_or_function, derivative=None, *, kinks=..., facts=...)`
runs the checks every entry here is held to and returns a report: `ok`,
each check's result (`report['derivative']`), and the worst point of each
(x, value, expected value, error, tolerance). The checks
(`activations.ALL_CHECKS`):

{check_list}

`register(Entry(...))` runs the cheap ones (`CHEAP_CHECKS`: elementwise,
derivative) and refuses an entry whose derivative is not jax.grad of its
formula, raising `CheckError` with the report; `register(...,
override=True)` replaces an entry of the same name (re-running a notebook
cell). Parameter checks for `Param(check=...)`: `positive`, `nonnegative`,
`finite`, `unit_interval`, `at_least(k)`.

A spec may name a function in any importable module:
`my_pkg.acts:log_cosh` or `my_pkg.acts:scaled(alpha=2.0)` (parameters are
bound as keyword arguments), in `activations.get` and in
`--config.model.activation`. The module is imported (running its `register()`
calls); the attribute may be an entry it registered or an `Entry` (used
with its analytic derivative), a flax Module class (parameters become its
fields), or a plain function f(x), which must pass the cheap checks with
jax.grad as its derivative and is used as it is.
`activations.import_modules(['my_pkg.acts'])` imports modules that only
register entries, so their names work as plain specs.

## Numerics

In float32, bfloat16, float16 and float64 every elementwise entry gives
finite values and gradients for finite inputs in [-1e4, 1e4] wherever the
true result is finite in that type, the mathematical limit at +-inf (NaN
where there is none: gcu, sine, snake's slope), and propagates NaN through
values and gradients. float16 and bfloat16 inputs are computed in float32
and rounded once, so intermediate terms (x^2 in squareplus, x^3 in the
approximate gelu) cannot overflow.

In float64, values and gradients agree with mpmath to within 8 ulp in the
tails (|x| > 8, out to 1e4 and down to the underflow threshold; for example
elu's gradient at x = -40 is exp(-40), where jax.nn gives 0, and
softplus(-700) is exp(-700)). XLA's own float64 tanh and expm1 are off by up
to 4 and 3 ulp, which is why the bound is 8 rather than 4. For |x| <= 8,
where values and slopes cross zero and any floating-point formula loses
relative precision near the crossing, the bound adds the effect of an 8-ulp
perturbation of x (8 eps |x f'(x)|). These entries get that bound
everywhere:

{notes}

float16 and bfloat16 inputs get the same accurate formulas, computed in
float32. float32 inputs take jax.nn's own formula where the accurate one
would be slower than jax.nn (XLA does not duplicate an exp or a division into
two fused loops, so a derivative sharing one with the value writes and
rereads whole arrays): tanh's and sigmoid's derivatives are (1 - y)(1 + y)
and y (1 - y), which round to 0 for |x| > 9 and x > 17, where the true values
are below 1e-7; silu and glu use y = sigmoid(x) likewise; the approximate
gelu uses 1 + tanh(u), which loses its digits for x < -4 and rounds to 0
below about -5, and squareplus uses x + sqrt(x^2 + b), which cancels for x < -1e3. float64
and the half types keep every bit there.

## Not included

{missing}

## Speed

`python scripts/benchmark_activations.py --out=FILE.json` times every entry's
jitted forward and forward+backward pass on 2^24 float32 values, as ratios
to a copy of the same size and to the jax.nn function of the same name.
"""


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default="docs/activations.md")
  parser.add_argument(
      "--verify", action="store_true",
      help="compare the recorded peer defaults with the installed jax, torch and keras",
  )
  args = parser.parse_args(argv)
  if args.verify:
    problems = verify_peers()
    print("\n".join(problems) or "the recorded peer defaults match the installed packages")
    return 1 if problems else 0
  Path(args.out).write_text(page())
  print(args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
