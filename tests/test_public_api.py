"""actlab as a library, used the way a researcher's own code uses it.

Every case runs a short script in a fresh Python process whose working
directory is a temporary directory outside the repository, with only that
directory on PYTHONPATH: actlab comes from the installed package (`pip
install -e .`), never from the repository root or the current directory.
`run_outside` writes the script and any modules it imports; add new cases
the same way.
"""

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
  for rel, source in {**(files or {}), "script.py": script}.items():
    path = where / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
  env = dict(os.environ, PYTHONPATH=str(where), JAX_PLATFORMS="cpu")
  proc = subprocess.run(
      [sys.executable, "script.py", *args], cwd=where, env=env,
      capture_output=True, text=True, timeout=timeout,
  )
  assert proc.returncode == 0, (
      f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n"
      f"--- stderr\n{proc.stderr[-6000:]}"
  )
  return proc


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

# What a model can use directly passes through get() unchanged.
own = lambda v: v * jax.nn.sigmoid(v)
for obj in (jax.nn.gelu, own, nn.PReLU, activations.PReLU, activations.get("prelu")):
  assert activations.get(obj) is obj, obj
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
assert activations.get("my_pkg.acts:Gate") is acts.Gate
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
