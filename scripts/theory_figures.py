r"""Signal-propagation theory against the papers and against real networks.

  python scripts/theory_figures.py --out=docs/theory.md \
      --figures=docs/figures/theory [--parts=curve,phase,scatter]
  python scripts/theory_figures.py --out=docs/theory.md \
      --figures=docs/figures/theory --parts=trainability --data_dir=/data/tfds

Writes docs/theory.md (the numbers, with this command) and three figures:

- curve: the tanh order-to-chaos line (critical sw2 against sb2) and the
  depth scale xi_c against sw2 at sb2 = 0.05, as in Schoenholz et al. 2017
  ("Deep information propagation"), with the paper's values marked.
- phase: chi_1 over a (sw2, sb2) grid for tanh and selu, the critical line
  drawn through it: ordered below, chaotic above.
- scatter: per-layer growth of ||dL/dz||^2 measured in actlab's MLP at
  initialisation (depths 10, 30, 50, width 256, several activations and
  (sw2, sb2), a few seeds) against chi_1 predicted by actlab.theory.
- trainability: tanh MLPs over depth x sw2 (sb2 = 0.05) trained briefly on
  standardised CIFAR-10 images; training accuracy reached, with the
  predicted depth limit TRAIN_XI_MULTIPLE * xi_c drawn over it, in the style
  of Schoenholz et al. 2017. Needs the prepared data (--data_dir).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import theory  # noqa: E402

# (activation, sw2, sb2) measured in real MLPs.
SCATTER_POINTS = [
    ("relu", 1.0, 0.0), ("relu", 2.0, 0.0), ("relu", 1.5, 0.1),
    ("tanh", 1.0, 0.0), ("tanh", 1.76, 0.05), ("tanh", 3.0, 0.05), ("tanh", 0.7, 0.05),
    ("gelu", 2.0, 0.0), ("gelu", 3.0, 0.05),
    ("selu", 1.0, 0.0), ("selu", 0.8, 0.0),
    ("silu", 2.0, 0.0), ("silu", 3.5, 0.05),
    ("elu", 1.0, 0.0), ("elu", 1.8, 0.05),
    ("sigmoid", 1.0, 0.0), ("sigmoid", 16.0, 0.0),
]


def curve(fig_dir: Path) -> dict:
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  # The line is steep near sb2 = 0 (sw2 = 1 there, 1.42 at 0.01): a log grid.
  sb2s = np.concatenate([[0.0], np.geomspace(1e-4, 0.3, 20)])
  line = [theory.critical_weight_var("tanh", float(b)) for b in sb2s]
  sw2s = np.linspace(0.5, 4.0, 36)
  rows = [theory.signal_propagation("tanh", float(w), 0.05) for w in sw2s]
  crit = theory.critical_weight_var("tanh", 0.05)
  fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
  a.plot(line, sb2s, "-", label="actlab.theory: chi_1 = 1")
  a.plot([1.0], [0.0], "o", ms=9, mfc="none", label="(1, 0): tanh'(0) = 1")
  a.plot([1.76], [0.05], "s", ms=9, mfc="none",
         label="≈ (1.76, 0.05): Schoenholz et al., recalled, unchecked")
  a.set(xlabel="sigma_w^2", ylabel="sigma_b^2", title="tanh: order-to-chaos line")
  a.text(1.2, 0.25, "ordered"), a.text(2.2, 0.05, "chaotic")
  a.legend(fontsize=8)
  xi = [r.xi_c if r.xi_c is not None and math.isfinite(r.xi_c) else np.nan for r in rows]
  b.semilogy(sw2s, xi, "-", label="xi_c (actlab.theory)")
  b.semilogy(sw2s, [r.xi_q or np.nan for r in rows], "--", label="xi_q")
  b.axvline(crit, color="k", lw=0.8, label=f"critical sw2 = {crit:.4f}")
  b.set(xlabel="sigma_w^2", ylabel="depth scale (layers)",
        title="tanh, sigma_b^2 = 0.05: xi_c diverges at criticality")
  b.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(fig_dir / "tanh_order_to_chaos.png", dpi=120)
  plt.close(fig)
  return {
      "critical_line": [[float(b), float(w)] for b, w in zip(sb2s, line)],
      "critical_at_sb2_0.05": crit,
      "xi_c_at_sb2_0.05": [[float(w), r.xi_c, r.xi_q] for w, r in zip(sw2s, rows)],
  }


def phase(fig_dir: Path) -> dict:
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  out = {}
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, act in zip(axes, ("tanh", "selu")):
    sw2s, sb2s = np.linspace(0.25, 4.0, 31), np.linspace(0.0, 0.5, 21)
    chi = np.array([[theory.gradient_growth(act, float(w), float(b)) or np.nan
                     for w in sw2s] for b in sb2s])
    mesh = ax.pcolormesh(sw2s, sb2s, np.log(chi), cmap="RdBu_r", vmin=-1, vmax=1,
                         shading="nearest")
    line = [theory.critical_weight_var(act, float(b)) for b in sb2s]
    ax.plot(line, sb2s, "k-", lw=1.5, label="chi_1 = 1")
    ax.set(xlabel="sigma_w^2", ylabel="sigma_b^2",
           title=f"{act}: ordered (blue) / chaotic (red)", xlim=(sw2s[0], sw2s[-1]))
    ax.legend(fontsize=8, loc="upper left")
    fig.colorbar(mesh, ax=ax, label="ln chi_1")
    out[act] = [[float(b), float(w)] for b, w in zip(sb2s, line)]
  fig.tight_layout()
  fig.savefig(fig_dir / "phase_diagram.png", dpi=120)
  plt.close(fig)
  return out


def _log_norms(grads: dict) -> dict:
  """ln ||g|| per layer without underflow: scaled by max |g| first."""
  out = {}
  for name, g in grads.items():
    g = np.asarray(g, np.float64)
    m = np.max(np.abs(g))
    out[name] = -math.inf if m == 0 else math.log(m) + 0.5 * math.log(np.sum((g / m) ** 2))
  return out


def measure(act: str, sw2: float, sb2: float, depth: int, seed: int, width: int,
            batch: int) -> float:
  """Measured ln chi_1: the mean per-layer change of ln ||dL/dz||^2, over
  the layers past the first quarter (where q has settled at q*)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from actlab import diagnostics, models  # pylint: disable=g-import-not-at-top

  with jax.enable_x64(True):
    model = models.MLP(
        activation=act, depth=depth, width=width, num_classes=10,
        kernel_init=jax.nn.initializers.variance_scaling(sw2, "fan_in", "normal"),
        dtype=jnp.float64,
    )
    k_init, k_bias, k_x, k_y = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(k_x, (batch, width), jnp.float64)
    y = jax.random.randint(k_y, (batch,), 0, 10)
    params = model.init(k_init, x)["params"]
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    keys = jax.random.split(k_bias, depth + 1)
    params = {
        name: {**layer, "bias": math.sqrt(sb2) * jax.random.normal(
            keys[i], layer["bias"].shape, jnp.float64)}
        for i, (name, layer) in enumerate(sorted(params.items()))
    }
    perturb = diagnostics.zero_perturbations(model.apply, params, x)

    def loss(p):
      logits = model.apply({"params": params, "perturbations": p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grads = jax.grad(loss)(perturb)
  flat = {}
  for name, g in grads.items():
    (leaf,) = jax.tree.leaves(g)
    flat[name] = leaf
  logs = [v for _, v in sorted(_log_norms(flat).items())]
  # Backwards: layer l's gradient is chi_1 times layer l + 1's, in squares.
  steps = [2 * (logs[i] - logs[i + 1]) for i in range(depth // 4, depth - 1)]
  return float(np.mean(steps))


def scatter(fig_dir: Path, seeds: int, width: int, batch: int) -> dict:
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  rows = []
  for act, sw2, sb2 in SCATTER_POINTS:
    r = theory.signal_propagation(act, sw2, sb2, q0=sw2 + sb2, correlations=False)
    for depth in (10, 30, 50):
      measured = [measure(act, sw2, sb2, depth, s, width, batch) for s in range(seeds)]
      rows.append({"activation": act, "sw2": sw2, "sb2": sb2, "depth": depth,
                   "predicted_ln_chi_1": math.log(r.chi_1),
                   "measured_ln_chi_1": measured})
      print(f"{act:8s} sw2={sw2:<5} sb2={sb2:<5} depth {depth:2d}: predicted"
            f" {math.log(r.chi_1):+.4f} measured {np.mean(measured):+.4f}", flush=True)
  fig, ax = plt.subplots(figsize=(5.5, 5))
  acts = sorted({r["activation"] for r in rows})
  markers = dict(zip((10, 30, 50), ("o", "s", "^")))
  colours = dict(zip(acts, plt.cm.tab10.colors))
  for r in rows:
    ax.plot([r["predicted_ln_chi_1"]] * len(r["measured_ln_chi_1"]), r["measured_ln_chi_1"],
            markers[r["depth"]], color=colours[r["activation"]], ms=4, alpha=0.7)
  lim = [min(min(r["measured_ln_chi_1"] + [r["predicted_ln_chi_1"]]) for r in rows) - 0.1,
         max(max(r["measured_ln_chi_1"] + [r["predicted_ln_chi_1"]]) for r in rows) + 0.1]
  ax.plot(lim, lim, "k-", lw=0.8, label="identity")
  for a in acts:
    ax.plot([], [], "o", color=colours[a], label=a)
  for d, m in markers.items():
    ax.plot([], [], m, color="gray", label=f"depth {d}")
  ax.set(xlabel="predicted ln chi_1 (actlab.theory)",
         ylabel="measured per-layer ln growth of ||dL/dz||^2",
         title=f"MLP width {width} at init, {seeds} seeds")
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(fig_dir / "predicted_vs_measured.png", dpi=120)
  plt.close(fig)
  return {"rows": rows, "width": width, "batch": batch, "seeds": seeds}


def agreement(rows: list[dict]) -> list[str]:
  """Per activation: mean and largest |measured - predicted| in ln chi_1."""
  lines = ["| activation | points (configs x depths x seeds) | mean abs. error of ln chi_1"
           " | largest |", "|---|---:|---:|---:|"]
  for act in sorted({r["activation"] for r in rows}):
    errs = [abs(m - r["predicted_ln_chi_1"]) for r in rows if r["activation"] == act
            for m in r["measured_ln_chi_1"]]
    lines.append(f"| {act} | {len(errs)} | {np.mean(errs):.4f} | {np.max(errs):.4f} |")
  return lines


# The trainability grid. Schoenholz et al. draw the limit at 6 xi_c: the
# deviation of an input pair's correlation from c* shrinks as exp(-L / xi_c),
# and after 6 xi_c it is e^-6 = 0.25% of where it started, below what a
# float32 network trained for a short while can tell apart.
TRAIN_XI_MULTIPLE = 6.0
TRAIN_SB2 = 0.05


def standardised_cifar(data_dir: str, images: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `images` CIFAR-10 training images, flattened and standardised
  per channel with their own mean and std, and their labels."""
  from actlab import data  # pylint: disable=g-import-not-at-top
  from actlab.data.cifar10 import channel_stats  # pylint: disable=g-import-not-at-top

  split = data.load(f"train[:{images}]", data_dir=data_dir, download=False)
  mean, std = channel_stats(split.images)
  x = np.asarray(data.scale_images(split.images, "standardize", mean, std))
  return x.reshape(len(x), -1), np.asarray(split.labels, np.int32)


def train_accuracies(x: np.ndarray, y: np.ndarray, activation: str, depth: int,
                     sw2s: list[float], sb2: float, *, width: int, steps: int, batch: int,
                     lr: float, seed: int) -> list[float]:
  """Training accuracy of one MLP per sw2 after `steps` steps of SGD.

  Every sw2 starts from the same standard draw, its kernels scaled by
  sqrt(sw2) and its biases drawn N(0, sb2), and sees the same batches: a
  paired comparison across sw2, vmapped, one compilation per depth.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from actlab import models  # pylint: disable=g-import-not-at-top

  model = models.MLP(activation=activation, depth=depth, width=width, num_classes=10,
                     kernel_init=jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"))
  k_init, k_bias, k_order = jax.random.split(jax.random.key(seed), 3)
  base = model.init(k_init, jnp.asarray(x[:1]))["params"]
  names = sorted(base)
  bias_keys = dict(zip(names, jax.random.split(k_bias, len(names))))
  noise = {n: jax.random.normal(bias_keys[n], base[n]["bias"].shape) for n in names}

  def init_at(sw2):
    return {n: {"kernel": jnp.sqrt(sw2) * base[n]["kernel"],
                "bias": math.sqrt(sb2) * noise[n]} for n in names}

  params = jax.vmap(init_at)(jnp.asarray(sw2s, jnp.float32))
  opt = optax.sgd(lr, momentum=0.9)
  opt_state = jax.vmap(opt.init)(params)
  order = jax.random.randint(k_order, (steps, batch), 0, len(x))
  x_d, y_d = jnp.asarray(x), jnp.asarray(y)

  def loss(p, xb, yb):
    logits = model.apply({"params": p}, xb)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  def one(p, s, idx):
    g = jax.grad(loss)(p, x_d[idx], y_d[idx])
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s

  def step(carry, idx):
    p, s = jax.vmap(one, in_axes=(0, 0, None))(*carry, idx)
    return (p, s), None

  def correct(p):
    return jnp.sum(jnp.argmax(model.apply({"params": p}, x_d), -1) == y_d)

  @jax.jit
  def run(p, s):
    (p, _), _ = jax.lax.scan(step, (p, s), order)
    return jax.vmap(correct)(p)

  return [float(c) / len(x) for c in np.asarray(run(params, opt_state))]


def depth_limit(activation: str, sw2s, sb2: float) -> list[float | None]:
  """TRAIN_XI_MULTIPLE * xi_c per sw2 (None where xi_c is undefined)."""
  out = []
  for w in sw2s:
    xi = theory.signal_propagation(activation, float(w), sb2).xi_c
    out.append(None if xi is None else TRAIN_XI_MULTIPLE * xi)
  return out


def trainability(fig_dir: Path, x: np.ndarray, y: np.ndarray, *, depths: list[int],
                 sw2s: list[float], width: int, steps: int, batch: int, lr: float,
                 seed: int, overlay_points: int = 50) -> dict:

  cpu0 = time.process_time()
  acc = []
  for depth in depths:
    t = time.process_time()
    acc.append(train_accuracies(x, y, "tanh", depth, sw2s, TRAIN_SB2, width=width,
                                steps=steps, batch=batch, lr=lr, seed=seed))
    print(f"depth {depth:3d}: " + " ".join(f"{a:.3f}" for a in acc[-1])
          + f"  ({time.process_time() - t:.0f} CPU-s)", flush=True)
  train_cpu = time.process_time() - cpu0
  result = {"activation": "tanh", "sb2": TRAIN_SB2, "depths": list(depths),
            "sw2": [float(w) for w in sw2s], "accuracy": acc, "width": width,
            "steps": steps, "batch": batch, "lr": lr, "seed": seed, "images": len(x),
            "xi_multiple": TRAIN_XI_MULTIPLE, "depth_limit": depth_limit("tanh", sw2s, TRAIN_SB2),
            "critical_sw2": theory.critical_weight_var("tanh", TRAIN_SB2),
            "train_cpu_seconds": train_cpu}
  trainability_figure(fig_dir / "trainability.png", result, overlay_points)
  return {**result, "cpu_seconds": time.process_time() - cpu0}


def trainability_figure(path: Path, tr: dict, overlay_points: int = 50) -> None:
  """Accuracy over depth x sw2, with TRAIN_XI_MULTIPLE * xi_c drawn over it."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  depths, sw2s, steps = tr["depths"], tr["sw2"], tr["steps"]
  fine = np.linspace(min(sw2s), max(sw2s), overlay_points)
  limit = depth_limit(tr["activation"], fine, tr["sb2"])
  fig, ax = plt.subplots(figsize=(6, 4.2))
  # Cells centred on the grid points; depths on a log axis.
  ws = np.asarray(sw2s)
  w_edges = np.concatenate([[ws[0] - (ws[1] - ws[0]) / 2], (ws[1:] + ws[:-1]) / 2,
                            [ws[-1] + (ws[-1] - ws[-2]) / 2]])
  d = np.asarray(depths, float)
  d_edges = np.concatenate([[d[0] ** 1.5 / d[1] ** 0.5], np.sqrt(d[1:] * d[:-1]),
                            [d[-1] ** 1.5 / d[-2] ** 0.5]])
  mesh = ax.pcolormesh(w_edges, d_edges, np.asarray(tr["accuracy"]), cmap="viridis",
                       vmin=0.1)
  fig.colorbar(mesh, ax=ax, label=f"training accuracy after {steps} SGD steps")
  ax.plot(fine, [np.nan if v is None else v for v in limit], "w--", lw=1.5,
          label=f"{tr['xi_multiple']:g} ξ_c (actlab.theory)")
  ax.axvline(tr["critical_sw2"], color="w", lw=0.6, ls=":",
             label=f"critical σ_w² = {tr['critical_sw2']:.3f}")
  ax.set(xlabel="σ_w²", ylabel="depth (hidden layers)", yscale="log",
         ylim=(d_edges[0], d_edges[-1]), xlim=(w_edges[0], w_edges[-1]),
         title=f"{tr['activation']} MLP, width {tr['width']}, σ_b² = {tr['sb2']:g},"
               f" {tr['images']} CIFAR-10 images")
  ax.set_yticks(depths, [str(v) for v in depths])
  ax.minorticks_off()
  ax.legend(fontsize=7, loc="lower left")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)



# A cell counts as trained at this training accuracy: three times chance.
TRAINED_ACCURACY = 0.3
ONE_CORE = "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false taskset -c 1 nice -n 10"


def trainability_section(tr: dict, rel: Path, command: str) -> list[str]:
  """The trainability grid's page section: setup, cost, table, agreement."""
  acc, depths, sw2s = np.asarray(tr["accuracy"]), tr["depths"], tr["sw2"]
  limit = [math.inf if v is None else v for v in tr["depth_limit"]]
  k = tr["xi_multiple"]
  predicted = np.array([[d <= lim for lim in limit] for d in depths])
  trained = acc >= TRAINED_ACCURACY
  agree = int(np.sum(predicted == trained))
  # Cells where prediction and measurement part: (depth, sw2) each way.
  missed = [f"({d}, {w:g})" for i, d in enumerate(depths) for j, w in enumerate(sw2s)
            if predicted[i, j] and not trained[i, j]]
  beyond = [f"({d}, {w:g})" for i, d in enumerate(depths) for j, w in enumerate(sw2s)
            if trained[i, j] and not predicted[i, j]]
  deepest = []
  for j in range(len(sw2s)):
    ok = [d for i, d in enumerate(depths) if trained[i, j]]
    deepest.append(str(max(ok)) if ok else "none")
  cell = lambda v: "∞" if math.isinf(v) else f"{v:.0f}"  # noqa: E731
  return [
      "## Trainability: depth × σ_w² (in the style of Schoenholz et al. 2017)",
      "",
      f"![trainability]({rel / 'trainability.png'})",
      "",
      f"Made by `{ONE_CORE} {command}` on one core:"
      f" {tr['cpu_seconds'] / 60:.1f} CPU-minutes in all"
      f" ({tr['train_cpu_seconds'] / 60:.1f} of them training, the rest ξ_c and the"
      " figure; the CIFAR-10 read not counted), measured with `time.process_time`.",
      "",
      f"{tr['activation']} MLPs of width {tr['width']} (actlab's `models.MLP`), depth ="
      " number of hidden layers, σ_b² ="
      f" {tr['sb2']:g}; every kernel N(0, σ_w²/fan_in), every bias N(0, σ_b²). Data: the"
      f" first {tr['images']:,} CIFAR-10 training images, standardised per channel with"
      " their own mean and standard deviation, flattened to 3,072 inputs. Training:"
      f" {tr['steps']} steps of SGD (momentum 0.9, learning rate {tr['lr']:g}, batches of"
      f" {tr['batch']} drawn with replacement), one seed ({tr['seed']}); every σ_w² starts"
      " from the same standard draw (kernels scaled by σ_w) and sees the same batches."
      " Colour: accuracy on the same images after training (chance 0.1). The grid is"
      " this small (one seed, one learning rate, width 256, a few hundred steps) to"
      " cost under 25 CPU-minutes: it is an early-training picture, and deep cells that"
      " are still near chance may train with more steps.",
      "",
      f"The white dashed line is {k:g} ξ_c from `theory.signal_propagation('tanh', σ_w²,"
      f" {tr['sb2']:g}).xi_c`. Why {k:g}: the distance of two inputs' correlation from its"
      " fixed point shrinks as exp(-depth / ξ_c), so after 6 ξ_c it is e⁻⁶ ≈ 0.25% of"
      " where it started, and Schoenholz et al. report that networks train up to about"
      " 6 ξ_c (the multiple they overlay on their trainability figures; it is recalled"
      " here, not read from the paper, which was not at hand: the figure number is not"
      " given for that reason). The dotted line is the critical σ_w² ="
      f" {tr['critical_sw2']:.4f}, where ξ_c diverges.",
      "",
      "| depth \\ σ_w² | " + " | ".join(f"{w:g}" for w in sw2s) + " |",
      "|---|" + "---:|" * len(sw2s),
      *[f"| {d} | " + " | ".join(f"{a:.3f}" for a in row) + " |"
        for d, row in zip(depths, acc)],
      f"| {k:g} ξ_c | " + " | ".join(cell(v) for v in limit) + " |",
      "| deepest with accuracy ≥ " + f"{TRAINED_ACCURACY:g} | " + " | ".join(deepest) + " |",
      "",
      f"Agreement: a cell is predicted trainable when its depth is ≤ {k:g} ξ_c and"
      f" counted trained when its accuracy is ≥ {TRAINED_ACCURACY:g} (three times"
      f" chance); the two agree in {agree} of {acc.size} cells. Predicted trainable but"
      f" not trained (depth, σ_w²): {', '.join(missed) or 'none'}. Trained beyond the"
      f" predicted limit: {', '.join(beyond) or 'none'}.",
      "",
  ]


def page(data: dict, figures: Path, out: Path) -> str:
  rel = Path("figures") / figures.name if out.parent.name == "docs" else figures
  curve_ = data.get("curve", {})
  pairs = curve_.get("critical_line", [])
  line = dict(pairs)
  shown = pairs[::4] + ([pairs[-1]] if (len(pairs) - 1) % 4 else [])
  secs = ", ".join(f"{k} {v:.0f} s" for k, v in data.get("seconds", {}).items())
  secs = f"wall time: {secs}" if secs else "wall time not recorded"
  commands = data.get("commands", {})
  made = "; ".join(f"{part}: `{cmd}`" for part, cmd in commands.items())
  lines = [
      "# Signal propagation: the theory against the papers and against networks",
      "",
      f"Made by {made} ({secs} on 2 shared CPU cores). The numbers are"
      f" in `{figures / 'theory.json'}`.",
      "",
      "`actlab.theory.signal_propagation(activation, weight_var, bias_var)` computes the"
      " mean-field quantities of Poole et al. 2016 and Schoenholz et al. 2017 for any"
      " elementwise activation; `critical_weight_var` solves χ₁ = 1.",
      "",
      "## The tanh order-to-chaos line and ξ_c (Schoenholz et al. 2017)",
      "",
      f"![tanh critical line and depth scales]({rel / 'tanh_order_to_chaos.png'})",
      "",
      "What is compared with the paper, and where the paper's values come from. This is"
      " not a reproduction of a published curve: the paper's text and figures were not"
      " at hand when this page was made, its curves are not tabulated, and no value"
      " below was read from one of its figures, so no figure number is given. The"
      " comparison is:",
      "",
      "- The critical line of tanh starts at (σ_w², σ_b²) = (1, 0): exact, not a paper"
      " value, since tanh'(0) = 1 and q* = 0 there. actlab: critical σ_w² at σ_b² = 0 is"
      f" {line.get(0.0, float('nan')):.10f}.",
      "- At σ_b² = 0.05, where Schoenholz et al. run their tanh experiments, the"
      " critical point lies at σ_w² ≈ 1.76. This value is approximate: it is recalled"
      " from the paper, to two decimals, not read from it here. It is compared with"
      " actlab's critical σ_w² at σ_b² = 0.05,"
      f" {curve_.get('critical_at_sb2_0.05', float('nan')):.4f}, which agrees to those two"
      " decimals; treat it as a check to that precision only (the square marked"
      " 'recalled' in the left panel).",
      "- ξ_c diverges at the critical point and is finite on both sides: a"
      " qualitative property the paper states and plots (ξ_c against σ_w² at"
      " σ_b² = 0.05); actlab's ξ_c is ∞ only at χ₁ = 1. No number of the paper's"
      " depth-scale plot is compared.",
      "",
      "| σ_b² | " + " | ".join(f"{b:.3g}" for b, _ in shown) + " |",
      "|---|" + "---:|" * len(shown),
      "| critical σ_w² (actlab) | " + " | ".join(f"{w:.4f}" for _, w in shown) + " |",
      "",
      "## Phase diagram",
      "",
      f"![phase diagram]({rel / 'phase_diagram.png'})",
      "",
      "ln χ₁ over (σ_w², σ_b²), blue ordered (gradients vanish, inputs become alike),"
      " red chaotic (gradients explode, inputs decorrelate), the black line χ₁ = 1."
      " This is the mean-field phase diagram; what it means for training is in"
      " the trainability section below.",
      "",
  ]
  sc = data.get("scatter")
  if sc:
    lines += [
        "## Predicted against measured, at initialisation",
        "",
        f"![predicted vs measured]({rel / 'predicted_vs_measured.png'})",
        "",
        f"actlab's MLP (width {sc['width']}, depths 10, 30, 50), kernels"
        " N(0, σ_w²/fan_in), biases N(0, σ_b²), float64, a batch of"
        f" {sc['batch']} standard normal inputs with random labels, {sc['seeds']} seeds;"
        " ‖∂L/∂z‖ at every activation site from `actlab.diagnostics` perturbations,"
        " its logarithm taken after scaling by the largest entry (no underflow)."
        " Measured: the mean over layers past the first quarter of"
        " ln(‖∂L/∂z_l‖² / ‖∂L/∂z_{l+1}‖²). Predicted: ln χ₁ from"
        " `signal_propagation(act, σ_w², σ_b², q0=σ_w² + σ_b²)`.",
        "",
        *agreement(sc["rows"]),
        "",
        "The large differences are where q* = 0 (gelu and silu at σ_w² = 2, tanh and"
        " elu at (1, 0)): the prediction is χ₁ at q* = 0, which q approaches only"
        " over many layers (geometrically for gelu and silu, algebraically for tanh"
        " and elu at the critical (1, 0)), so a network of finite depth measures"
        " χ₁ at q > q*. The deeper the network, the closer it comes (gelu: -0.08,"
        " -0.33, -0.49 at depths 10, 30, 50 against -0.69).",
        "",
        "| activation | σ_w² | σ_b² | depth | predicted ln χ₁ | measured (mean over seeds) |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {r['activation']} | {r['sw2']:g} | {r['sb2']:g} | {r['depth']} |"
          f" {r['predicted_ln_chi_1']:+.4f} | {np.mean(r['measured_ln_chi_1']):+.4f} |"
          for r in sc["rows"]],
        "",
    ]
  if "trainability" in data:
    lines += trainability_section(data["trainability"], rel, commands["trainability"])
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", type=Path, required=True, help="markdown page to write")
  parser.add_argument("--figures", type=Path, required=True, help="folder for the figures")
  parser.add_argument("--parts", default="curve,phase,scatter",
                      help="what to compute (empty: only rewrite the page from theory.json)")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--width", type=int, default=256)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--data_dir", help="prepared CIFAR-10 (trainability only)")
  parser.add_argument("--train_images", type=int, default=5000)
  parser.add_argument("--train_depths", default="5,10,20,40,60")
  parser.add_argument("--train_sw2", default="0.5,1,1.5,2,2.5,3,3.5,4")
  parser.add_argument("--train_width", type=int, default=256)
  parser.add_argument("--train_steps", type=int, default=500)
  parser.add_argument("--train_batch", type=int, default=128)
  parser.add_argument("--train_lr", type=float, default=0.01, help="SGD, momentum 0.9")
  parser.add_argument("--train_seed", type=int, default=0)
  args = parser.parse_args(argv)
  args.figures.mkdir(parents=True, exist_ok=True)
  data_path = args.figures / "theory.json"
  data = json.loads(data_path.read_text()) if data_path.exists() else {}
  for part in filter(None, args.parts.split(",")):
    t0 = time.time()
    if part == "curve":
      data["curve"] = curve(args.figures)
    elif part == "phase":
      data["phase"] = phase(args.figures)
    elif part == "scatter":
      data["scatter"] = scatter(args.figures, args.seeds, args.width, args.batch)
    elif part == "trainability":
      if not args.data_dir:
        raise SystemExit("--parts=trainability trains on CIFAR-10: pass --data_dir, the"
                         " folder holding the prepared dataset (python -m actlab.data).")
      x, y = standardised_cifar(args.data_dir, args.train_images)
      data["trainability"] = trainability(
          args.figures, x, y, depths=[int(v) for v in args.train_depths.split(",")],
          sw2s=[float(v) for v in args.train_sw2.split(",")], width=args.train_width,
          steps=args.train_steps, batch=args.train_batch, lr=args.train_lr,
          seed=args.train_seed)
    else:
      raise SystemExit(
          f"--parts takes curve, phase, scatter, trainability; got {part!r}.")
    data.setdefault("seconds", {})[part] = time.time() - t0
    print(f"{part}: {time.time() - t0:.0f} s", flush=True)
  command = " ".join(["python scripts/theory_figures.py",
                      *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
  for part in filter(None, args.parts.split(",")):
    data.setdefault("commands", {})[part] = command
  data_path.write_text(json.dumps(data, indent=1) + "\n")
  args.out.write_text(page(data, args.figures, args.out))
  return 0


if __name__ == "__main__":
  sys.exit(main())
