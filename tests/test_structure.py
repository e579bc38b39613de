"""The package's shape: imports run one way, private names stay private.

Read from the source (every import statement, those inside functions too),
so an import cycle held together by a function-level import fails here even
though Python would run it.

* No import cycle between striate's modules. A package's ``__init__`` importing
  its own submodules does not count: that is how a package lists its contents.
* The layers import downwards only, in the order of DESIGN.md: tensor ← checks
  ← functional ← nn ← optim, data, models ← train ← experiments, explain ← cli.
* No private name (``_x``) is imported from another module, and no private
  module (``_x.py``) is imported from outside its own package.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "striate"

# Each top-level part of the package and its layer: a module may import its own
# layer and those below it, never one above.
LAYERS = {
    "tensor": 0, "random": 0, "threads": 0, "heap": 0,
    "checks": 1,
    "functional": 2, "gradcheck": 2,
    "nn": 3,
    "optim": 4, "data": 4, "models": 4, "serialization": 4, "summary": 4, "filters": 4, "viz": 4,
    "train": 5, "onnx": 5, "compile": 5, "dist": 5,
    "experiments": 6, "explain": 6, "explorer": 6,
    "cli": 7,
}

LAYERS["summary"] = 3       # beside nn, which shows a module's summary table in a notebook


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names], node.lineno))
    return [(target, names, line) for target, names, line in found if target.split(".")[0] == "striate"]


def _edges() -> dict[str, set[str]]:
    """module -> the striate modules it imports (a name taken from a package that is a submodule counts as that)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, names, _ in _imports(name):
            submodules = {f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES}
            targets = set(submodules)
            if target in MODULES and len(submodules) < max(len(names), 1):
                targets.add(target)                     # a name defined in the module (or package) itself
            for t in targets:
                own_submodule = _is_package(name) and t.startswith(name + ".")
                if t != name and not own_submodule:
                    graph[name].add(t)
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_part_of_the_package_has_a_layer():
    tops = {m.split(".")[1] for m in MODULES if m.count(".") >= 1 and not m.endswith("__main__")}
    assert tops - set(LAYERS) == set(), "add the new part to LAYERS (and to the layout in README.md)"


def test_no_import_cycle():
    graph = _edges()
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_layers_import_downwards():
    wrong = []
    for name, targets in _edges().items():
        mine = _layer(name)
        for target in targets:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def test_no_private_name_crosses_a_module():
    wrong = []
    for name in MODULES:
        own_package = name if _is_package(name) else name.rpartition(".")[0]
        for target, names, line in _imports(name):
            where = f"{MODULES[name].relative_to(ROOT.parent)}:{line}"
            parts = target.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])            # the package the private module belongs to
                if _private(part) and not (own_package + ".").startswith(owner + "."):
                    wrong.append(f"{where}: private module {target} imported from outside {owner}")
            for imported in names:
                submodule = f"{target}.{imported}"
                if _private(imported):
                    if submodule in MODULES and (own_package + ".").startswith(target + "."):
                        continue                        # a private module of its own package
                    wrong.append(f"{where}: private name {imported} imported from {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("snippet, expected", [
    ("from ..tensor import Tensor", ("striate.tensor", ["Tensor"])),
    ("from .. import functional as F", ("striate", ["functional"])),
    ("from .module import Module", ("striate.nn.module", ["Module"])),
    ("import striate.functional", ("striate.functional", [])),
])
def test_imports_are_resolved(tmp_path, snippet, expected, monkeypatch):
    """The resolver itself: relative imports are read against the importing module's package."""
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    " + snippet + "\n")         # inside a function: found all the same
    monkeypatch.setitem(MODULES, "striate.nn.x", fake)
    target, names, _ = _imports("striate.nn.x")[0]
    assert (target, names) == expected
