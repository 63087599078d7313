"""The commands of a non-editable install, run from a folder outside the
repository: a wheel built from this source, installed into a fresh venv
(its dependencies reused from the running environment through a .pth
path, not installed again), then `actlab-train`, `actlab-sweep` and
`actlab-report` on a project's own registered model and 'pkg.mod:fn'
activation, with no PYTHONPATH.

It builds a wheel and trains three tiny runs in fresh processes (about 50 s
of CPU time, minutes of wall time on a busy machine), so it runs when
ACTLAB_TEST_INSTALL=1 is set (`ACTLAB_TEST_INSTALL=1 python -m pytest
tests/test_installed.py`), as the release check does.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
  os.environ.get("ACTLAB_TEST_INSTALL") != "1",
  reason="builds and installs a wheel (minutes); set ACTLAB_TEST_INSTALL=1 to run it",
)

PROJECT = {
  "my_pkg/__init__.py": "",
  "my_pkg/my_acts.py": '''
import jax
import jax.numpy as jnp


def tswish(x):
  """A tanh-gated swish: x * sigmoid(x) * tanh(|x| + 1)."""
  return x * jax.nn.sigmoid(x) * jnp.tanh(jnp.abs(x) + 1.0)
''',
  "my_pkg/my_models.py": """
from typing import Any, Callable

import flax.linen as nn

from actlab import choices


class ResMLP(nn.Module):
  activation: Callable
  num_classes: int
  kernel_init: Any
  dtype: Any
  width: int = 32

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = nn.Dense(self.width, kernel_init=self.kernel_init)(x.reshape((x.shape[0], -1)))
    h = h + nn.Dense(self.width, kernel_init=self.kernel_init)(self.activation(h))
    return nn.Dense(self.num_classes, kernel_init=self.kernel_init)(self.activation(h))


choices.register_model("resmlp", lambda config, **common: ResMLP(**common))
""",
}
ACTIVATION = "my_pkg.my_acts:tswish"
PARTS = [
  "--config.imports=my_pkg.my_models",
  "--config.model.name=resmlp",
  f"--config.model.activation={ACTIVATION}",
  "--config.optim.name=adamw",
  "--config.optim.b1=0.8",
  "--config.data.download=False",
  "--config.data.input_scaling=unit",
  "--config.batch_size=16",
  "--config.num_epochs=1",
  "--config.log_every_steps=1",
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
  """bin/ of a venv holding actlab installed from a wheel of this source."""
  tmp = tmp_path_factory.mktemp("installed")
  source = tmp / "source"  # a copy, so that building writes nothing into the repo
  source.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(ROOT / name, source / name)
  shutil.copytree(ROOT / "actlab", source / "actlab", ignore=shutil.ignore_patterns("__pycache__"))
  pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
  build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source)]
  subprocess.run(build, check=True, cwd=tmp)
  wheel = next((tmp / "dist").glob("actlab-*.whl"))
  venv = tmp / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
  target = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
  # The dependencies: this environment's site-packages as plain paths (its own
  # .pth files, an editable actlab among them, are not processed from there).
  deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
  (target / "dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
  install = [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps"]
  subprocess.run([*install, str(wheel)], check=True, cwd=tmp)
  return venv / "bin"


def _run(bin_dir: Path, where: Path, *argv: str) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(JAX_PLATFORMS="cpu", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
  proc = subprocess.run(argv, cwd=where, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, (
    f"{argv[0]} exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n"
    f"--- stderr\n{proc.stderr[-6000:]}"
  )
  return proc


def test_console_commands_of_the_installed_package_run_a_projects_own_parts(
  installed, tmp_path, fake_cifar10
):
  data_dir, _ = fake_cifar10
  for rel, text in PROJECT.items():
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_text(text)
  where = _run(installed, tmp_path, "python", "-c", "import actlab; print(actlab.__file__)")
  origin = Path(where.stdout.strip())
  assert origin.is_relative_to(installed.parent) and not origin.is_relative_to(ROOT), origin

  config = str(ROOT / "experiments/configs/lenet5_cifar10.py")
  data = f"--config.data.data_dir={data_dir}"
  train = _run(
    installed,
    tmp_path,
    "actlab-train",
    f"--config={config}",
    "--workdir=run",
    "--cpu_devices=1",
    data,
    *PARTS,
  )
  summary = json.loads(train.stdout[train.stdout.index("{") :])
  assert summary["epochs"] == 1 and 0 <= summary["final_eval_accuracy"] <= 1, summary
  saved = json.loads((tmp_path / "run/config.json").read_text())
  assert (saved["model"]["name"], saved["model"]["activation"]) == ("resmlp", ACTIVATION)
  assert (saved["optim"]["name"], saved["optim"]["b1"]) == ("adamw", 0.8)

  report = _run(installed, tmp_path, "actlab-report", "run", "--out=run_report")
  assert "resmlp" in report.stdout and ACTIVATION in report.stdout, report.stdout

  study = str(ROOT / "experiments/configs/activation_comparison.py")
  _run(
    installed,
    tmp_path,
    "actlab-sweep",
    f"--config={study}",
    "--only=relu",
    "--seeds=1",
    "--workers=1",
    "--workdir=sweep",
    data,
    *PARTS,
    "--config.data.train_split=train[:32]",
    "--config.data.eval_split=train[32:]",
    "--config.data.test_split=test",
  )
  run = json.loads((tmp_path / "sweep/relu/seed_0/config.json").read_text())
  assert (run["model"]["name"], run["model"]["activation"]) == ("resmlp", ACTIVATION)
  swept = _run(installed, tmp_path, "actlab-report", "sweep")
  assert "relu" in swept.stdout and (tmp_path / "sweep/report/report.md").exists(), swept.stdout


# A user's script outside the repository: activation parameters under
# jax.grad/vmap, check() on jax.nn's functions, a learnable activation from
# get() inside a model, the input-layout errors, and NNX training.
USER_SCRIPT = """
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import nnx

import actlab
from actlab import activations, models
from actlab import nnx as anx

x = jnp.linspace(-3.0, 3.0, 7)
g = jax.grad(lambda a: activations.elu(x, alpha=a).sum())(1.0)
assert abs(float(g) - float(jnp.expm1(x[x < 0]).sum())) < 1e-5, g
assert jax.vmap(lambda a: activations.elu(x, alpha=a))(jnp.array([0.5, 2.0])).shape == (2, 7)
for bad in ("leaky_relu(negative_slope=1e400)",):
  try:
    activations.get(bad)
    raise SystemExit(f"{bad} accepted")
  except ValueError as e:
    assert "overflows to inf" in str(e), e
for f in (jax.nn.relu, jax.nn.silu):
  report = activations.check(f, checks=("limits", "check_grads", "nan"), dtypes=("float32",))
  assert report.ok, report


class Head(nn.Module):
  @nn.compact
  def __call__(self, h):
    return activations.get("prelu")(activations.get(nn.PReLU)(nn.Dense(4)(h)))


params = Head().init(jax.random.key(0), jnp.ones((2, 3)))["params"]
assert len(params) == 3, params.keys()
lenet = models.LeNet5()
for shape, says in (((2, 3, 32, 32), "NCHW"), ((32, 32, 3), "x[None]")):
  try:
    jax.eval_shape(lambda v: lenet.init(jax.random.key(0), v), jnp.zeros(shape))
    raise SystemExit(f"{shape} accepted")
  except ValueError as e:
    assert says in str(e), e

model = anx.MLP("prelu", in_features=12, depth=2, width=16, rngs=nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
images, labels = jax.random.normal(jax.random.key(1), (32, 12)), jnp.arange(32) % 10
losses = [float(anx.jit_train_step(model, optimizer, images, labels)) for _ in range(10)]
assert losses[-1] < losses[0], losses
print(actlab.__file__)
"""


def test_the_installed_package_serves_a_users_script(installed, tmp_path):
  (tmp_path / "script.py").write_text(USER_SCRIPT)
  out = _run(installed, tmp_path, "python", "script.py")
  assert Path(out.stdout.strip()).is_relative_to(installed.parent), out.stdout
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(JAX_PLATFORMS="cpu", PATH=f"{installed}{os.pathsep}{env.get('PATH', '')}")
  config = str(ROOT / "experiments/configs/lenet5_cifar10.py")
  misspelt = subprocess.run(
    ["actlab-train", f"--config={config}", "--workdir=run", "--config.optim.learning_rate=0.1",
     "--config.optim.learning_rat=0.01"],
    cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
  )
  assert misspelt.returncode != 0
  assert "no field 'optim.learning_rat'" in misspelt.stderr, misspelt.stderr[-2000:]
