"""The package's layers import only downwards, and no two modules import each other in a circle.

Every `import` in every module under src/convsee counts, those inside functions included (a
function-level import is still a dependency; it only hides a circle until the function runs).
Layers, lowest first::

    errors → values → files → capture → spec → datasets → models → run → draw → views → {cli, web}

(values: the grammars of option values; capture: the hook helpers spec and run share.)

A module may import its own layer or any layer below it. Imports under `if TYPE_CHECKING:` are
annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "convsee"
LAYERS = [
    "errors",
    "values",
    "files",
    "capture",
    "spec",
    "datasets",
    "models",
    "run",
    "draw",
    "views",
    "front",
]
# the first part of a module's dotted name (inside convsee) → its layer
LAYER_OF = {
    "errors": "errors",
    "files": "files",
    "spec": "spec",
    "values": "values",
    "capture": "capture",
    "datasets": "datasets",
    "models": "models",
    "run": "run",
    "draw": "draw",
    "views": "views",
    "cli": "front",
    "web": "front",
    "__main__": "front",
    "__init__": "front",  # imports lazily through importlib, by name: may reach every layer
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    return LAYER_OF[module.split(".")[0]]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, modules: set[str]) -> set[str]:
    """The convsee modules that the module at path imports (a name imported from a package
    counts as the submodule when there is one, else as the package)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _type_checking(node)
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("convsee."):
                    found.add(alias.name.removeprefix("convsee."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "convsee" or node.module.startswith("convsee.")):
                target = node.module.removeprefix("convsee").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in modules else target)
    found.discard("")
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): {m for m in imports(p, modules) if m in modules} for p in paths}


def upward_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if LAYERS.index(layer(target)) > LAYERS.index(layer(source)):
                bad.append(f"{source} ({layer(source)}) → {target} ({layer(target)})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    assert [m for m in graph() if m.split(".")[0] not in LAYER_OF] == []


def test_imports_only_go_downwards():
    bad = upward_edges(graph())
    if bad:
        pytest.fail("upward imports:\n" + "\n".join(bad), pytrace=False)


def test_no_import_cycles():
    edges = graph()
    found = cycles(edges)
    lines = [
        " ↔ ".join(c) + ": " + "; ".join(f"{a}→{b}" for a in c for b in sorted(edges[a]) if b in c)
        for c in found
    ]
    if found:
        pytest.fail("import cycles:\n" + "\n".join(lines), pytrace=False)


@pytest.mark.parametrize(
    "edges, upward, circles",
    [
        (
            {"spec": {"run.capture"}, "run.capture": {"spec"}},
            ["spec (spec) → run.capture (run)"],
            [["run.capture", "spec"]],
        ),
        ({"cli.x": {"draw.y"}, "draw.y": {"models.z"}, "models.z": set()}, [], []),
        (
            {"draw.a": {"draw.b"}, "draw.b": {"draw.c"}, "draw.c": {"draw.a"}},
            [],
            [["draw.a", "draw.b", "draw.c"]],
        ),
    ],
)
def test_the_checks_find_what_they_should(edges, upward, circles):
    assert upward_edges(edges) == upward
    assert cycles(edges) == circles


def test_function_level_and_relative_imports_are_seen(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    src = "def f():\n    from ..draw import render\n    from . import network\n"
    src += "    import convsee.errors\n"
    (pkg / "m.py").write_text(src)
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        found = imports(pkg / "m.py", {"draw.render", "p.network", "errors"})
    finally:
        PACKAGE = saved
    assert found == {"draw.render", "p.network", "errors"}
