"""The package's imports form layers with no cycle: the core knows nothing of Gymnasium agents or interfaces."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"prefrl": ROOT / "prefrl", "prefrl.envs": ROOT / "envs", "prefrl.ui": ROOT / "ui"}

LAYERS = [
    ("base", ("prefrl", "prefrl.errors", "prefrl.config")),
    ("core", ("prefrl.core",)),
    ("sides", ("prefrl.gym", "prefrl.envs")),
    ("loops", ("prefrl.run_dir", "prefrl.checkpoint", "prefrl.report", "prefrl.session", "prefrl.loop",
               "prefrl.llm")),
    ("interfaces", ("prefrl.interfaces", "prefrl.ui", "prefrl.__main__")),
]
"""Lowest first. A module may import modules of its own layer or of the layers below it, never above."""


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _layer(module: str) -> int:
    best, depth = -1, -1
    for k, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > depth:
                best, depth = k, len(p)
    if best < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return best


def _imports(path: Path, known: set[str]) -> set[str]:
    """prefrl modules imported anywhere in the file (lazy imports inside functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n.startswith("prefrl"):
                out.add(n)
    return out


MODULES = _modules()
GRAPH = {m: _imports(p, set(MODULES)) - {m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_its_layer_or_below(module):
    above = {d for d in GRAPH[module] if _layer(d) > _layer(module)}
    assert not above, f"{module} ({LAYERS[_layer(module)][0]}) imports from a higher layer: {sorted(above)}"


def test_imports_have_no_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if d in GRAPH and d != "prefrl" and not m.startswith(d + "."):  # a package's __init__ is not a cycle
                if state.get(d) == 1:
                    raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
                if d not in state:
                    visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_the_loop_reaches_the_window_without_the_cli():
    """The run does not start `prefrl label` as a subprocess: the CLI hands train() a window (prefrl.ui)."""
    for m, path in MODULES.items():
        if _layer(m) < _layer("prefrl.interfaces"):
            tree = ast.parse(path.read_text())
            imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            assert "subprocess" not in imported, m
