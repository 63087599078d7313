"""actlab as a library, used the way a researcher's own code uses it.

Every case runs a short script in a fresh Python process whose working
directory is a temporary directory outside the repository, with only that
directory on PYTHONPATH: actlab comes from the installed package (`pip
install -e .`), never from the repository root or the current directory.
`run_outside` writes the script and any modules it imports; add new cases
the same way.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def outside(tmp_path_factory):
  """A fresh directory outside the repository."""
  path = tmp_path_factory.mktemp("user_code")
  assert not path.resolve().is_relative_to(ROOT), f"{path} is inside {ROOT}"
  return path


def run_outside(
    where: Path, script: str, *args: str, files: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
  """Runs `script` as `python script.py *args` in `where`, outside the repo.

  `files` ({relative path: source}) are written next to it, so the script
  (and any command it starts) can import them: `where` is the only entry of
  PYTHONPATH. Fails the test with the process's output unless it exits 0.
  """
  proc = run_command_outside(
      where, "script.py", *args, files={**(files or {}), "script.py": script}, timeout=timeout
  )
  _assert_ok(proc)
  return proc


def run_command_outside(
    where: Path, *argv: str, files: dict[str, str] | None = None, timeout: float = 600,
) -> subprocess.CompletedProcess:
  """`python *argv` with `where` as working directory and only entry of
  PYTHONPATH, after writing `files` there; returns the finished process."""
  for rel, source in (files or {}).items():
    path = where / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
  env = dict(os.environ, PYTHONPATH=str(where), JAX_PLATFORMS="cpu")
  return subprocess.run(
      [sys.executable, *argv], cwd=where, env=env,
      capture_output=True, text=True, timeout=timeout,
  )


def _assert_ok(proc: subprocess.CompletedProcess) -> None:
  assert proc.returncode == 0, (
      f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n"
      f"--- stderr\n{proc.stderr[-6000:]}"
  )


# Every script starts by making sure it sees the installed package.
PRELUDE = f"""
import os, sys
import actlab
from pathlib import Path
assert Path(os.getcwd()).resolve() != Path({str(ROOT)!r}), "ran inside the repo"
assert {str(ROOT)!r} not in sys.path, sys.path
"""


def test_activations_are_attributes_like_jax_nn(outside):
  run_outside(outside, PRELUDE + """
import functools
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actlab import activations
from actlab.activations import leaky_relu, relu, positive, nonnegative

x = jnp.array([-2.0, -0.5, 0.0, 1.5])
np.testing.assert_array_equal(activations.relu(x), jax.nn.relu(x))
np.testing.assert_allclose(activations.leaky_relu(x, negative_slope=0.2),
                           jax.nn.leaky_relu(x, negative_slope=0.2))
np.testing.assert_allclose(leaky_relu(x, 0.2), [-0.4, -0.1, 0.0, 1.5])
assert relu is activations.relu is activations.get("relu")
assert float(jax.grad(relu)(0.0)) == 0.0  # the documented kink value
assert abs(float(jax.grad(lambda v: leaky_relu(v, negative_slope=0.2))(-1.0)) - 0.2) < 1e-7
assert relu(jnp.array([-3, 2], jnp.int32)).dtype == jnp.int32  # as jax.nn.relu

listed = dir(activations)
for name in activations.names(include_aliases=True, kind="all"):
  assert name in listed, name
  assert getattr(activations, name).__doc__, name
assert "max(x, 0)" in activations.relu.__doc__
assert positive(1.0) and not positive(0.0) and nonnegative(0.0)

# What a model can use directly passes through get() unchanged; a Module
# class comes back as a factory of it (usable as a function inside a model).
own = lambda v: v * jax.nn.sigmoid(v)
for obj in (jax.nn.gelu, own, activations.get("prelu")):
  assert activations.get(obj) is obj, obj
for cls in (nn.PReLU, activations.PReLU):
  assert isinstance(activations.get(cls), functools.partial) and activations.get(cls).func is cls
try:
  activations.rleu
except AttributeError as e:
  assert "Did you mean 'relu'" in str(e), e
else:
  raise AssertionError("activations.rleu did not raise")
print("ok")
""")


def test_own_activation_is_checked_before_it_is_registered(outside):
  proc = run_outside(outside, PRELUDE + """
import math
import jax
import jax.numpy as jnp

from actlab import activations
from actlab.activations import Entry, Facts

# x^2 with the derivative x: refused, with a report naming the worst point.
try:
  activations.register(Entry("square", lambda x: x * x, lambda x: x))
except activations.CheckError as e:
  report = e.report
  assert not report.ok and not report["derivative"].ok, report
  worst = report.worst
  assert worst.value == worst.x and worst.expected == 2 * worst.x, worst
  assert "derivative" in str(e) and "worst at x=" in str(e), e
  print(e)
else:
  raise AssertionError("a wrong derivative was registered")
assert "square" not in activations.names()

def log_cosh(x):
  # log(cosh(x)), accurate near 0 (where logaddexp(x, -x) - log 2 cancels).
  a = jnp.abs(x)
  near0 = jnp.log1p(2.0 * jnp.sinh(0.5 * jnp.minimum(a, 1.0)) ** 2)
  return jnp.where(a < 1.0, near0, a + jnp.log1p(jnp.exp(-2.0 * a)) - math.log(2.0))

facts = Facts((0.0, math.inf), False, "Cinf", False, 1.0, math.inf, "none")
report = activations.check(log_cosh, jnp.tanh, facts=facts)
assert report.ok, report
assert {r.name for r in report.results if not r.skipped} >= {
    "derivative", "check_grads", "range", "finite[float16]", "limits[bfloat16]"}

entry = activations.register(Entry("log_cosh", log_cosh, jnp.tanh, facts=facts))
assert activations.check("log_cosh", checks=activations.CHEAP_CHECKS).ok
assert float(jax.grad(activations.log_cosh)(3.0)) == float(jnp.tanh(3.0))
try:
  activations.register(Entry("log_cosh", log_cosh, jnp.tanh, facts=facts))
except ValueError as e:
  assert "override=True" in str(e), e
else:
  raise AssertionError("re-registering without override did not raise")
# Re-running a notebook cell: override=True replaces the entry.
halved = Entry("log_cosh", lambda x: 0.5 * log_cosh(x), lambda x: 0.5 * jnp.tanh(x))
activations.register(halved, override=True)
assert float(activations.get("log_cosh")(3.0)) == float(0.5 * log_cosh(3.0))
assert float(activations.log_cosh(3.0)) == float(0.5 * log_cosh(3.0))
print("ok")
""")
  assert "register('square') refused" in proc.stdout


USER_MODULE = """
import jax.numpy as jnp
import flax.linen as nn

from actlab.activations import Entry, register


def log_cosh(x):
  \"\"\"log(cosh(x)).\"\"\"
  return jnp.logaddexp(x, -x) - jnp.log(2.0)


register(Entry("log_cosh", log_cosh, jnp.tanh))


def scaled_tanh(x, alpha=1.0):
  return alpha * jnp.tanh(x)


class Gate(nn.Module):
  width: int = 1

  @nn.compact
  def __call__(self, x):
    return x * nn.sigmoid(x)


NOT_CALLABLE = 3
"""


def test_module_attribute_specs_import_user_modules(outside):
  run_outside(outside, PRELUDE + """
import functools
import jax
import jax.numpy as jnp

from actlab import activations

# Importing the module runs its register() calls; the entry keeps its
# analytic derivative.
f = activations.get("my_pkg.acts:log_cosh")
assert f is activations.get("log_cosh") is activations.log_cosh
assert activations.kinks("my_pkg.acts:log_cosh") == {}
assert activations.canonical("my_pkg.acts:log_cosh") == "my_pkg.acts:log_cosh"
# A plain function, with parameters bound as keyword arguments.
g = activations.get("my_pkg.acts:scaled_tanh(alpha=2.0)")
assert isinstance(g, functools.partial) and float(g(1.0)) == float(2 * jnp.tanh(1.0))
assert g is activations.get("my_pkg.acts:scaled_tanh(alpha=2.0)")
# A flax Module class passes through; parameters become its fields.
import my_pkg.acts as acts
assert activations.get("my_pkg.acts:Gate").func is acts.Gate
assert activations.get("my_pkg.acts:Gate(width=2)").keywords == {"width": 2}

for spec, words in [
    ("no_such_pkg.acts:f", ["Cannot import module 'no_such_pkg.acts'", "PYTHONPATH"]),
    ("my_pkg.acts:log_cos", ["has no attribute 'log_cos'", "Did you mean 'log_cosh'"]),
    ("my_pkg.acts:NOT_CALLABLE", ["not a callable activation"]),
    ("my_pkg..acts:f", ["not a module path"]),
]:
  try:
    activations.get(spec)
  except ValueError as e:
    assert all(w in str(e) for w in words), (spec, str(e))
  else:
    raise AssertionError(f"{spec} did not raise")

# A module that only registers: imported by name, then its entries work.
activations.import_modules(["my_pkg.more"])
assert float(activations.get("softer_relu")(0.0)) > 0
print("ok")
""", files={
      "my_pkg/__init__.py": "",
      "my_pkg/acts.py": USER_MODULE,
      "my_pkg/more.py": """
import jax
from actlab.activations import Entry, register

register(Entry("softer_relu", jax.nn.softplus, jax.nn.sigmoid))
""",
  })


def test_any_activation_trains_in_both_models_with_its_own_parameters_per_site(outside):
  """Strings, functions, flax's PReLU, a user's Module class and instance."""
  run_outside(outside, PRELUDE + """
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from actlab import models


class Scaled(nn.Module):
  # A user's activation with a plain __call__(x): tanh(s * x), s learned.
  @nn.compact
  def __call__(self, x):
    return jnp.tanh(self.param("scale", nn.initializers.constant(0.5), ()) * x)


instance = Scaled()
# (activation, site name prefix or None, scalars per site)
KINDS = {
    "spec string": ("leaky_relu(negative_slope=0.2)", None, 0),
    "module:attribute spec": ("my_acts:soft_clip", None, 0),
    "function": (jnp.tanh, None, 0),
    "flax PReLU": (nn.PReLU, "prelu", 1),
    "user class": (Scaled, "scaled", 1),
    "user instance": (instance, "scaled", 1),
}
MODELS = {
    "LeNet5": (lambda a: models.LeNet5(activation=a), (32, 32, 3), 4),
    "MLP": (lambda a: models.MLP(activation=a, depth=3, width=32), (8, 8, 3), 3),
}
for model_name, (make, shape, n_sites) in MODELS.items():
  kx, ky = jax.random.split(jax.random.key(1))
  x = jax.random.normal(kx, (8, *shape))
  y = jax.random.randint(ky, (8,), 0, 10)
  plain = make("relu").init(jax.random.key(0), x[:1])["params"]
  for kind, (act, prefix, per_site) in KINDS.items():
    case = f"{model_name} / {kind}"
    model = make(act)
    params = model.init(jax.random.key(0), x[:1])["params"]
    sites = sorted(k for k in params if prefix and (k == prefix or k.startswith(prefix + "_")))
    assert len(sites) == (n_sites if prefix else 0), (case, sorted(params))
    assert set(params) == set(plain) | set(sites), case
    for site in sites:
      assert sum(np.size(p) for p in jax.tree.leaves(params[site])) == per_site, (case, site)
    extra = len(sites) * per_site
    assert models.count_params(params) == models.count_params(plain) + extra, case

    tx = optax.adam(1e-3)
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels
    loss_and_grads = jax.jit(jax.value_and_grad(
        lambda p: cross_entropy(model.apply({"params": p}, x, train=True), y).mean()))
    p, opt, losses = params, tx.init(params), []
    for _ in range(20):  # 20 optax steps
      loss, grads = loss_and_grads(p)
      updates, opt = tx.update(grads, opt, p)
      p = optax.apply_updates(p, updates)
      losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < losses[0], (case, losses)
    # Each site learnt its own parameter: none is shared between sites.
    learnt = [float(jax.tree.leaves(p[site])[0]) for site in sites]
    assert len(set(learnt)) == len(sites), (case, learnt)
    print(case, f"{losses[0]:.3f} -> {losses[-1]:.3f}", sites)
# The user's instance was cloned per site, never bound to a model itself.
assert instance.parent is None and instance.name is None, (instance.parent, instance.name)
print("ok")
""", files={"my_acts.py": """
import jax.numpy as jnp


def soft_clip(x):
  return x / (1.0 + jnp.abs(x))
"""})


USER_ACTIVATION = {
    "my_pkg/__init__.py": "",
    "my_pkg/acts.py": """
import jax.numpy as jnp


def soft_clip(x):
  \"\"\"x / (1 + |x|), the softsign.\"\"\"
  return x / (1.0 + jnp.abs(x))
""",
}
SPEC = "my_pkg.acts:soft_clip"
# 40 fake CIFAR-10 training images in batches of 16: two steps, one epoch.
TINY_RUN = [
    "--config.data.download=False", "--config.data.input_scaling=unit", "--config.batch_size=16",
    "--config.num_epochs=1", "--config.log_every_steps=1",
]


def test_experiment_and_sweep_commands_take_a_users_activation(outside, fake_cifar10):
  data_dir, _ = fake_cifar10
  main = run_command_outside(
      outside, str(ROOT / "experiments/main.py"),
      f"--config={ROOT / 'experiments/configs/lenet5_cifar10.py'}",
      f"--workdir={outside / 'run'}", f"--config.model.activation={SPEC}",
      f"--config.data.data_dir={data_dir}", *TINY_RUN, files=USER_ACTIVATION,
  )
  _assert_ok(main)
  summary = json.loads(main.stdout[main.stdout.index("{"):])
  assert summary["epochs"] == 1 and 0 <= summary["final_eval_accuracy"] <= 1, summary
  assert json.loads((outside / "run/config.json").read_text())["model"]["activation"] == SPEC

  sweep = run_command_outside(
      outside, str(ROOT / "scripts/sweep.py"),
      f"--config={ROOT / 'experiments/configs/activation_comparison.py'}",
      "--only=relu", "--seeds=1", "--workers=1", f"--workdir={outside / 'sweep'}",
      f"--config.model.activation={SPEC}", f"--config.data.data_dir={data_dir}", *TINY_RUN,
      "--config.data.train_split=train[:32]", "--config.data.eval_split=train[32:]",
      "--config.data.test_split=test",
  )
  _assert_ok(sweep)
  assert "done: 1" in sweep.stdout, sweep.stdout
  run = outside / "sweep/relu/seed_0"
  assert json.loads((run / "config.json").read_text())["model"]["activation"] == SPEC
  done = json.loads((run / "done.json").read_text())
  assert done["selected_epoch"] == 1 and 0 <= done["test_accuracy"] <= 1, done


def test_presets_come_from_the_package_and_misspelt_fields_are_refused(outside):
  run_outside(outside, PRELUDE + """
from actlab import presets
from actlab.config import ConfigError, base_config

c = presets.tutorial("act=tanh,runlocal")
assert (c.model.activation, c.num_epochs, c.data.train_split) == ("tanh", 1, "train[:10%]")
c = presets.runlocal(presets.validation_protocol(base_config()))
d = c.data
assert (c.num_epochs, d.eval_split, d.test_split) == (1, "train[45000:45500]", "test[:10%]")
try:
  presets.tutorial("epochs=3,runlocal")
except ConfigError as e:
  assert "contradicts epochs=" in str(e), e
else:
  raise AssertionError("epochs=3 with runlocal was accepted")
try:
  c.epochs = 3
except AttributeError as e:
  assert 'Did you mean "num_epochs"' in str(e), e
else:
  raise AssertionError("a misspelt field was added to the config")
print("ok")
""")
  bad = run_command_outside(
      outside, str(ROOT / "experiments/main.py"),
      f"--config={ROOT / 'experiments/configs/lenet5_cifar10.py'}",
      f"--workdir={outside / 'run'}", "--config.learning_rat=0.1",
  )
  assert bad.returncode != 0
  hint = "no field 'learning_rat'; did you mean --config.optim.learning_rate?"
  assert hint in bad.stderr, bad.stderr
  assert "Traceback" not in bad.stderr and not (outside / "run").exists()


def test_train_and_evaluate_takes_research_codes_own_model_optimizer_and_arrays(outside):
  run_outside(outside, PRELUDE + """
import json

import flax.linen as nn
import numpy as np
import optax

from actlab import presets, train
from actlab.workdir import WorkdirError


class TwoLayer(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(3)(nn.relu(nn.Dense(16)(x.reshape((x.shape[0], -1)))))


rng = np.random.default_rng(0)
data = {
    "train": (rng.normal(size=(32, 4, 4, 3)).astype(np.float32), rng.integers(0, 3, 32)),
    "eval": (rng.normal(size=(8, 4, 4, 3)).astype(np.float32), rng.integers(0, 3, 8)),
}
config = presets.tutorial()
config.batch_size, config.num_epochs, config.log_every_steps = 8, 2, 4
state = train.train_and_evaluate(config, "wd", model=TwoLayer(), tx=optax.sgd(0.05), data=data)
assert (int(state.step), int(state.epoch)) == (8, 2)
custom = json.load(open("wd/config.json"))["custom"]
assert custom["model"]["class"] == "__main__.TwoLayer" and custom["data"]["num_classes"] == 3
assert train.final_summary("wd")["epochs"] == 2
try:
  train.train_and_evaluate(config, "wd", model=TwoLayer(), tx=optax.adam(1e-3), data=data)
except WorkdirError as e:
  assert "custom.optimizer" in str(e), e
else:
  raise AssertionError("a run continued with another optimizer")
print("ok")
""")
