r"""The report card of an activation: one markdown page with its figure.

  python scripts/card.py --activation=gelu --out=docs/cards
  python scripts/card.py --activation='leaky_relu(negative_slope=0.2)' --out=/tmp/cards
  python scripts/card.py --activation=my_pkg.acts:log_cosh --out=/tmp/cards
  python scripts/card.py --activation=relu --activation=tanh --out=docs/cards --index
  python scripts/card.py --activation=gelu --out=/tmp/cards --train_seeds=3 \
      --train_flag=--config.data.data_dir=/data/tfds

The page holds: f, f' and f'' (figure); the registered facts (`describe`);
`check()`; numerics (worst float32 error against float64 on a grid,
finiteness in float16, bfloat16 and float32); speed against the jax.nn
function of the same name (forward and forward+backward, median of
`--repeats`, as a ratio); signal propagation (`actlab.theory`) under
Glorot/LeCun (sw2 = 1), He (sw2 = 2) and the critical weight variance; the
critical sw2 against sb2; the born-dead probability for a few widths and
depths; and, with `--train_seeds=N` (N >= 2), a paired comparison against
relu (LeNet5 on CIFAR-10, the `runlocal` preset: one epoch on 4,500 images;
`scripts/sweep.py` into OUT/train/, then `actlab.stats`). A function that
fails `check()` still gets a card; what needs a correct derivative is marked
unavailable. `--index` writes
index.md, a table of the cards made by the call.
"""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from actlab import activations, stats, theory  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("activation", None, "spec string, catalogue name or pkg.mod:fn")
flags.DEFINE_string("out", None, "folder for the cards")
flags.DEFINE_bool("index", False, "also write OUT/index.md for the cards of this call")
flags.DEFINE_integer("train_seeds", 0, "paired training runs against relu (0: none)")
flags.DEFINE_multi_string("train_flag", [], "extra flags for scripts/sweep.py")
flags.DEFINE_integer("speed_size", 1 << 20, "values per speed measurement")
flags.DEFINE_integer("repeats", 7, "speed repeats (median)")
flags.mark_flags_as_required(["activation", "out"])

# What needs a correct derivative: signal propagation and the critical init.
DERIVATIVE_CHECKS = ("elementwise", "derivative", "custom_jvp", "check_grads", "kinks")
SB2 = (0.0, 0.05, 0.1, 0.3)
BORN_DEAD = ((2, 10), (4, 10), (4, 50), (8, 50))
INITS = (("Glorot/LeCun (square layers)", 1.0), ("He", 2.0))


def slug(spec: str) -> str:
  return re.sub(r"[^A-Za-z0-9]+", "_", spec).strip("_")


def _fmt(v, digits: int = 4) -> str:
  if v is None:
    return "—"
  if isinstance(v, float) and math.isinf(v):
    return "∞"
  return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _target(spec: str):
  """What the card analyses: the spec itself, or the function it names."""
  entry, target = activations.registry.resolve(spec)
  return spec if entry is not None else target


def figure(spec: str, path: Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  act = theory.elementwise(_target(spec))
  x = np.linspace(-5, 5, 2001)
  f, d = act.f(x), act.df(x)
  with np.errstate(invalid="ignore"):
    d2 = np.gradient(d, x)
  for k in act.kinks:  # f'' is a delta there: leave a gap
    d2[np.abs(x - k) < 0.01] = np.nan
  fig, ax = plt.subplots(figsize=(6, 3.5))
  ax.plot(x, f, label="f")
  ax.plot(x, d, label="f'")
  ax.plot(x, d2, label="f'' (finite differences of f')", lw=0.8)
  ax.axhline(0, color="k", lw=0.4), ax.axvline(0, color="k", lw=0.4)
  ax.set(title=act.name, xlabel="x")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def facts_section(spec: str) -> list[str]:
  try:
    d = activations.describe(spec)
  except ValueError as e:
    return [f"No registered facts: {e}"]
  rows = [("range", d.range), ("monotonic", d.monotonic), ("smoothness", d.smoothness),
          ("max slope", f"{d.max_slope:.6g} at x = {d.max_slope_at:.6g}"),
          ("zero-centred", d.zero_centred), ("saturates", d.saturates),
          ("kinks {x: f'(x) used}", d.kinks or "none")]
  return [f"{d.summary}", "", "| fact | value |", "|---|---|",
          *[f"| {k} | {v} |" for k, v in rows]]


def numerics_section(spec: str, report) -> list[str]:
  """float32 against float64 on the check grid, and the dtype checks."""
  f = activations.get(_target(spec)) if isinstance(_target(spec), str) else _target(spec)
  x = np.concatenate([-np.logspace(-4, 2, 300), [0.0], np.logspace(-4, 2, 300)])
  with jax.enable_x64(True):
    ref = np.asarray(f(jnp.asarray(x, jnp.float64)), np.float64)
  x32 = np.asarray(x, np.float32)
  with jax.enable_x64(True):
    ref32 = np.asarray(f(jnp.asarray(x32.astype(np.float64))), np.float64)
  got = np.asarray(f(jnp.asarray(x32)), np.float64)
  ok = np.isfinite(ref32) & (np.abs(ref32) > 1e-30)
  ulp = np.abs(got[ok] - ref32[ok]) / np.spacing(np.abs(ref32[ok]).astype(np.float32))
  i = int(np.argmax(ulp))
  del ref
  lines = [f"Worst float32 error against float64 (at the same, float32-rounded inputs,"
           f" {ok.sum()} points on ±[1e-4, 100]): {ulp[i]:.3g} ulp at x ="
           f" {float(x32[ok][i]):.6g}.", "", "| dtype | finite values and gradients |"
           " NaN propagates |", "|---|---|---|"]
  results = {r.name: r for r in report.results}
  for dt in ("float16", "bfloat16", "float32"):
    cell = lambda n: ("ok" if results[n].ok else "**failed**") if n in results else "—"  # noqa: E731
    lines.append(f"| {dt} | {cell(f'finite[{dt}]')} | {cell(f'nan[{dt}]')} |")
  return lines


def speed_section(spec: str, size: int, repeats: int) -> list[str]:
  import benchmark_activations as bench  # pylint: disable=g-import-not-at-top

  if spec not in bench.JAX_NN:
    return ["No jax.nn function of the same definition; speed not compared."]
  x = jax.random.normal(jax.random.key(0), (size,), jnp.float32)
  g = jax.random.normal(jax.random.key(1), (size,), jnp.float32)
  copy = jax.jit(lambda v: -v)
  copy_ms = bench._median_ms([bench._time(copy, x) for _ in range(repeats)])
  r = bench.bench(spec, x, g, repeats, copy_ms)
  return [f"{size:,} float32 values on {jax.devices()[0].platform.upper()}, median of"
          f" {repeats}; ratio = actlab time / jax.nn time.", "",
          "| pass | actlab ms | jax.nn ms | ratio |", "|---|---:|---:|---:|",
          f"| forward | {r['actlab_forward_ms']:.3f} | {r['jax.nn_forward_ms']:.3f} |"
          f" {r['forward_vs_jax_nn']:.2f} |",
          f"| forward+backward | {r['actlab_forward_backward_ms']:.3f} |"
          f" {r['jax.nn_forward_backward_ms']:.3f} | {r['forward_backward_vs_jax_nn']:.2f} |"]


def _prop_row(label: str, r) -> str:
  return (f"| {label} | {r.weight_var:.4g} | {r.fixed_point}: {_fmt(r.q_star)} |"
          f" {_fmt(r.chi_1)} | {r.phase or '—'} | {_fmt(r.c_star)} | {_fmt(r.xi_q)} |"
          f" {_fmt(r.xi_c)} |")


def theory_section(spec: str) -> tuple[list[str], dict]:
  target = _target(spec)
  summary: dict = {}
  lines = ["At σ_b² = 0, inputs of unit second moment (q0 = 1); χ₁ is the per-layer"
           " growth of E‖∂L/∂z‖² backwards, ξ in layers (∞: diverges).", "",
           "| initialiser | σ_w² | fixed point q* | χ₁ | phase | c* | ξ_q | ξ_c |",
           "|---|---:|---|---:|---|---:|---:|---:|"]
  for label, sw2 in INITS:
    r = theory.signal_propagation(target, sw2, 0.0)
    summary[label] = r
    lines.append(_prop_row(label, r))
  try:
    crit = theory.critical_weight_var(target, 0.0)
    r = theory.signal_propagation(target, crit, 0.0)
    summary["critical"] = r
    lines.append(_prop_row("critical (`theory.critical_init`)", r))
  except theory.NoCriticalPoint as e:
    summary["critical"] = None
    lines.append(f"| critical | — | {e} | | | | | |")
  lines += ["", "Critical σ_w² against σ_b² (the order-to-chaos line):", "",
            "| σ_b² | " + " | ".join(f"{b:g}" for b in SB2) + " |",
            "|---|" + "---:|" * len(SB2)]
  cells = []
  for b in SB2:
    try:
      cells.append(f"{theory.critical_weight_var(target, b):.4f}")
    except theory.NoCriticalPoint:
      cells.append("none in [0.01, 100]")
  lines.append("| critical σ_w² | " + " | ".join(cells) + " |")
  return lines, summary


def born_dead_section(spec: str) -> list[str]:
  target = _target(spec)
  lines = ["Fraction of 500 networks (He normal weights, zero biases, 1 input) that are"
           " constant functions at initialisation, with its 95% Clopper-Pearson"
           " interval; for relu the ±1 check is exact, otherwise a network counts as"
           " dead when its last hidden layer is the same at 64 inputs drawn from"
           " [-1, 1].", "", "| width | depth | born dead | 95% interval |",
           "|---:|---:|---:|---|"]
  for width, depth in BORN_DEAD:
    r = theory.born_dead_probability(width, depth, trials=500, inputs=64, seed=width * depth,
                                     activation=target)
    lines.append(f"| {width} | {depth} | {r.probability:.3f} | [{r.ci[0]:.3f},"
                 f" {r.ci[1]:.3f}] |")
  return lines


BASELINE = "relu"
COMPARISON_CONFIG = "experiments/configs/activation_comparison.py"


def training_command(spec: str, seeds: int, extra: list[str], work: Path) -> list[str]:
  """The `scripts/sweep.py` command (relative to the repository) of the comparison."""
  config = f"{COMPARISON_CONFIG}:acts={BASELINE}+{spec},runlocal"
  return ["python", "scripts/sweep.py", f"--config={config}", f"--seeds={seeds}",
          "--workers=auto", f"--workdir={work}", *extra]


def training_section(spec: str, seeds: int, extra: list[str], out: Path) -> list[str]:
  """Trains `spec` and relu at the same seeds (paired) and states the
  difference in test accuracy with its interval."""
  if spec.split("(")[0] == BASELINE:
    return [f"`{spec}` is the baseline of this comparison; nothing to compare."]
  work = out / "train" / slug(spec)
  cmd = training_command(spec, seeds, extra, work)
  # Run from the repository with an absolute workdir, so that the relative
  # script and config paths resolve wherever the card is made.
  run = [sys.executable, *training_command(spec, seeds, extra, work.resolve())[1:]]
  done = subprocess.run(run, cwd=ROOT, check=False)
  lines = [f"`{shlex.join(cmd)}`", ""]
  if done.returncode:
    lines += [f"The sweep exited with status {done.returncode}: some runs failed (their"
              f" logs are in {work}/*/seed_*/log.txt). What finished is compared below.", ""]
  try:
    sweep = stats.read_sweep(work, baseline=BASELINE)
  except (OSError, ValueError) as e:
    return [*lines, f"No runs to compare: {e}"]
  ok = [r for c in sweep.conditions for r in sweep.ok_runs(c).values()]
  if ok:
    r = ok[0]
    lines += [f"LeNet5 (the `runlocal` preset of `{COMPARISON_CONFIG}`):"
              f" {r.field('num_epochs')} epoch(s) on `{r.field('data.train_split')}`,"
              f" the epoch selected on `{r.field('data.eval_split')}`, tested on"
              f" `{r.field('data.test_split')}`; seeds paired (same initialisation"
              " stream and data order).", ""]
  comparisons = stats.compare_to_baseline(sweep.accuracies(), BASELINE)
  lines += [f"| condition | seeds | difference to {BASELINE} (test accuracy) | 95% interval |"
            " paired t p |", "|---|---:|---:|---|---:|"]
  for name, c in comparisons.items():
    lines.append(f"| {name} | {c.n} | {c.mean_diff:+.4f} | [{c.ci_low:+.4f},"
                 f" {c.ci_high:+.4f}] | {c.t_p:.3g} |")
  return lines


def card(spec: str, out: Path) -> dict:
  name = slug(spec)
  command = shlex.join(["python", "scripts/card.py", f"--activation={spec}",
                        f"--out={out}", *train_flags()])
  target = _target(spec)
  report = activations.check(target if not isinstance(target, str) else spec,
                             name=spec)
  failed = [r.name for r in report.results if not r.ok and not r.skipped]
  broken = [n for n in failed if n.split("[")[0] in DERIVATIVE_CHECKS]
  lines = [f"# `{spec}`", "", f"Made by `{command}`.", ""]
  summary: dict = {"spec": spec, "page": f"{name}.md"}
  try:
    figure(spec, out / f"{name}.png")
    lines += [f"![f, f', f''](./{name}.png)", ""]
  except Exception as e:  # a function that cannot be evaluated still gets a card
    lines += [f"Figure unavailable: {type(e).__name__}: {e}", ""]
  lines += ["## Facts", "", *facts_section(spec), "", "## check()", "", "```",
            str(report), "```", ""]
  lines += ["## Numerics", "", *numerics_section(spec, report), ""]
  lines += ["## Speed", "", *speed_section(spec, FLAGS.speed_size, FLAGS.repeats), ""]
  if broken:
    note = (f"Unavailable: check() failed {', '.join(broken)}, and signal propagation"
            " needs a correct derivative.")
    lines += ["## Signal propagation at initialisation", "", note, ""]
  else:
    try:
      body, summary["theory"] = theory_section(spec)
    except (ValueError, ArithmeticError) as e:
      body = [f"Unavailable: {e}"]
    lines += ["## Signal propagation at initialisation", "", *body, ""]
  lines += ["## Born dead", "", *born_dead_section(spec), ""]
  if FLAGS.train_seeds:
    lines += ["## Training against relu", "",
              *training_section(spec, FLAGS.train_seeds, FLAGS.train_flag, out), ""]
  (out / f"{name}.md").write_text("\n".join(lines))
  print(f"wrote {out / (name + '.md')}", flush=True)
  return summary


def check_train_seeds(n: int) -> None:
  if n == 1 or n < 0:
    raise app.UsageError(f"--train_seeds={n}: a paired interval needs at least 2 seeds"
                         " (or 0 for no training).")


def train_flags() -> list[str]:
  """The training flags of this call, to repeat in the commands shown."""
  if not FLAGS.train_seeds:
    return []
  return [f"--train_seeds={FLAGS.train_seeds}", *(f"--train_flag={f}" for f in FLAGS.train_flag)]


def index(summaries: list[dict], out: Path, command: str) -> None:
  lines = ["# Activation report cards", "", f"Made by `{command}`.", "",
           "σ_b² = 0 and q0 = 1 throughout. χ₁ is the per-layer growth of the squared"
           " gradient norm (1: critical); ξ_c at the usual initialiser is the depth over"
           " which inputs' correlations settle (∞ at criticality).", "",
           "| activation | critical σ_w² | χ₁ Glorot (σ_w² = 1) | χ₁ He (σ_w² = 2) |"
           " ξ_c Glorot | ξ_c He |", "|---|---:|---:|---:|---:|---:|"]
  for s in summaries:
    t = s.get("theory")
    if not t:
      lines.append(f"| [`{s['spec']}`]({s['page']}) | unavailable | | | | |")
      continue
    g, h, c = t["Glorot/LeCun (square layers)"], t["He"], t["critical"]
    lines.append(f"| [`{s['spec']}`]({s['page']}) | {_fmt(c.weight_var if c else None)} |"
                 f" {_fmt(g.chi_1)} | {_fmt(h.chi_1)} | {_fmt(g.xi_c)} | {_fmt(h.xi_c)} |")
  (out / "index.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
  del argv
  check_train_seeds(FLAGS.train_seeds)
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  summaries = [card(spec, out) for spec in FLAGS.activation]
  if FLAGS.index:
    command = shlex.join(["python", "scripts/card.py",
                          *[f"--activation={a}" for a in FLAGS.activation],
                          f"--out={out}", *train_flags(), "--index"])
    index(summaries, out, command)


if __name__ == "__main__":
  app.run(main)
