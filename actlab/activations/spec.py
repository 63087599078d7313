"""Spec strings and user modules: parsing without `eval`, importing by name.

A spec is `name`, `name(key=value, ...)`, or `module.path:attribute` with
the same optional parameters (`my_pkg.acts:log_cosh`,
`my_pkg.acts:scaled(alpha=2.0)`). Parameter values are literals (numbers,
strings, True/False); nothing is evaluated. A module path is imported with
`importlib`, which runs whatever `register()` calls it contains.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import re
import sys
import types
from collections.abc import Iterable
from typing import Any

_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_EXAMPLES = "'relu', 'elu(alpha=0.5)' or 'my_pkg.acts:log_cosh'"


def split_module(name: str) -> tuple[str, str] | None:
  """('module.path', 'attribute') for 'module.path:attribute', else None."""
  if ":" not in name:
    return None
  module, _, attribute = name.partition(":")
  return module, attribute


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
  """Splits a spec into its name and literal keyword arguments.

  The name is a registry name (`'elu'`) or `'module.path:attribute'`. Only
  literals are accepted (numbers, booleans, strings); nothing is evaluated.
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(
        f"An activation spec must be a non-empty string such as {_EXAMPLES},"
        f" got {spec!r}."
    )
  text = spec.strip()
  module = ""
  paren = text.find("(")
  colon = text.find(":")
  if colon >= 0 and (paren < 0 or colon < paren):
    module, text = text[:colon].strip(), text[colon + 1:].strip()
    if not _MODULE_PATH.fullmatch(module):
      raise ValueError(
          f"Malformed activation spec {spec!r}: {module!r} is not a module path;"
          " expected 'package.module:attribute', e.g. 'my_pkg.acts:log_cosh'."
      )
  try:
    node = ast.parse(text, mode="eval").body
  except SyntaxError as e:
    raise ValueError(
        f"Malformed activation spec {spec!r}: {e.msg}. Expected 'name',"
        " 'name(key=value, ...)' or 'module.path:name(key=value, ...)', e.g."
        " 'elu(alpha=0.5)'."
    ) from None
  call = node if isinstance(node, ast.Call) else None
  target = call.func if call else node
  if not isinstance(target, ast.Name):
    raise ValueError(
        f"Malformed activation spec {spec!r}: expected 'name',"
        " 'name(key=value, ...)' or 'module.path:name(key=value, ...)', e.g."
        " 'elu(alpha=0.5)'."
    )
  name = f"{module}:{target.id}" if module else target.id
  return name, _keywords(spec, call) if call else {}


def _keywords(spec: str, call: ast.Call) -> dict[str, Any]:
  if call.args:
    raise ValueError(
        f"Malformed activation spec {spec!r}: parameters must be named, e.g."
        f" '{ast.unparse(call.func)}(alpha=0.5)'."
    )
  kwargs = {}
  for kw in call.keywords:
    if kw.arg is None:
      raise ValueError(f"Malformed activation spec {spec!r}: '**' is not allowed.")
    try:
      kwargs[kw.arg] = ast.literal_eval(kw.value)
    except ValueError:
      raise ValueError(
          f"Malformed activation spec {spec!r}: the value of {kw.arg!r} must be"
          f" a literal number, string or True/False, got"
          f" '{ast.unparse(kw.value)}'."
      ) from None
  return kwargs


def format_spec(name: str, params: dict[str, Any]) -> str:
  """The spec string for `name` with `params` spelled out."""
  if not params:
    return name
  return f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def import_module(path: str, spec: str | None = None) -> types.ModuleType:
  """Imports `path`, turning failures into errors that say what to do."""
  where = f" for activation spec {spec!r}" if spec else ""
  if not isinstance(path, str) or not _MODULE_PATH.fullmatch(path):
    raise ValueError(
        f"{path!r}{where} is not a module path; expected a dotted name such as"
        " 'my_pkg.acts'."
    )
  try:
    return importlib.import_module(path)
  except ModuleNotFoundError as e:
    if e.name and (path == e.name or path.startswith(e.name + ".")):
      raise ValueError(
          f"Cannot import module {path!r}{where}: no module named {e.name!r}."
          " Make it importable from this process: install its package"
          " (`pip install -e .` in its project), or add the directory that"
          f" contains it to PYTHONPATH (searched now: {_search_path()})."
      ) from e
    raise ValueError(
        f"Importing module {path!r}{where} failed: it imports {e.name!r},"
        f" which is not installed ({e})."
    ) from e
  except Exception as e:
    raise ValueError(
        f"Importing module {path!r}{where} raised {type(e).__name__}: {e}"
    ) from e


def _search_path() -> str:
  shown = [p or "(current directory)" for p in sys.path[:4]]
  more = f", ... ({len(sys.path) - 4} more)" if len(sys.path) > 4 else ""
  return ", ".join(shown) + more


def import_modules(paths: Iterable[str]) -> list[types.ModuleType]:
  """Imports user modules, so the activations they `register()` can be named.

  >>> activations.import_modules(["my_pkg.acts"])  # then get("log_cosh")

  A config can list such modules; importing one twice is a no-op.
  """
  if isinstance(paths, str):
    raise ValueError(
        f"import_modules takes a list of module paths, got the string {paths!r};"
        f" write [{paths!r}]."
    )
  return [import_module(p) for p in paths]


def load_attribute(name: str, spec: str) -> tuple[types.ModuleType, Any]:
  """(module, value) for 'module.path:attribute', imported."""
  module_path, attribute = split_module(name) or ("", name)
  module = import_module(module_path, spec)
  if not hasattr(module, attribute):
    public = sorted(
        k for k, v in vars(module).items() if not k.startswith("_") and callable(v)
    )
    close = difflib.get_close_matches(attribute, public, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(public[:20]) + (", ..." if len(public) > 20 else "")
    raise ValueError(
        f"Module {module_path!r} ({getattr(module, '__file__', '?')}) has no"
        f" attribute {attribute!r} for activation spec {spec!r}.{hint} Its"
        f" public callables: {listing or 'none'}."
    )
  return module, getattr(module, attribute)
