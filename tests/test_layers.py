"""The package's architecture, checked from its source: layers, cycles, private names, size.

Layers, lowest first: core -> analysis -> store -> paper -> book -> apps. A module imports only
from its own layer or lower ones (``version`` sits below them all). Imports made only for
type checking count for the layering too, not for cycles. The apps may import the book layer
inside a function: it needs the ``[book]`` extra, which the command line does not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monosem_lib"
LAYERS = ("core", "analysis", "store", "paper", "book", "apps")
MAX_LINES = 500
# Third-party imports a function may make lazily: they belong to the [book] extra or are
# only needed by one command, so that ``import monosem_lib`` needs only torch and numpy.
LAZY_OK = (
    "pandas",
    "matplotlib",
    "ipywidgets",
    "IPython",
    "PIL",
    "tqdm",
    "statistics",
    "myst_nb",
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path):
    """(target module, imported names, type_only, in_function) for every import."""
    tree = ast.parse(path.read_text())

    def walk(node, type_only, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from walk(child, True, in_function)
                continue
            fn = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom):
                target = _resolve(module, path, child)
                names = [a.name for a in child.names]
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
                for t in subs or [target]:
                    yield t, names, type_only, in_function
            elif isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, [], type_only, in_function
            yield from walk(child, type_only, in_function or fn)

    yield from walk(tree, False, False)


MODULES = _modules()


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "monosem_lib":
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else -1  # version: below all


def _internal_edges():
    for module, path in MODULES.items():
        for target, names, type_only, in_function in _imports(module, path):
            if target.split(".")[0] == "monosem_lib":
                yield module, target, names, type_only, in_function


def test_every_module_sits_in_a_layer():
    loose = [m for m in MODULES if m.count(".") == 1 and _layer(m) == -1]
    assert sorted(loose) == ["monosem_lib.__main__", "monosem_lib.version"], loose


def test_no_module_imports_from_a_higher_layer():
    bad = []
    for module, target, _, _, in_function in _internal_edges():
        if module in ("monosem_lib", "monosem_lib.__main__"):
            continue  # the flat API and the entry point sit above every layer
        have, want = _layer(module), _layer(target)
        if want is None or have is None or want <= have:
            continue
        lazy_book = module.startswith("monosem_lib.apps") and target.startswith("monosem_lib.book")
        if not (lazy_book and in_function):
            bad.append(f"{module} -> {target}")
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)


def test_no_private_name_is_imported_across_modules():
    bad = [
        f"{module}: {target}.{n}"
        for module, target, names, _, _ in _internal_edges()
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_package_imports_sit_at_module_top():
    """Imports of the package's own modules are made at the top of a module, where a reader
    sees them, except the apps' lazy use of the book layer."""
    bad = [
        f"{module} -> {target}"
        for module, target, _, type_only, in_function in _internal_edges()
        if in_function
        and not (module.startswith("monosem_lib.apps") and target.startswith("monosem_lib.book"))
    ]
    assert not bad, "package imports inside functions:\n" + "\n".join(bad)


def test_lazy_imports_are_optional_dependencies_only():
    bad = []
    for module, path in MODULES.items():
        for target, _, _, in_function in _imports(module, path):
            top = target.split(".")[0]
            if in_function and top != "monosem_lib" and top not in LAZY_OK:
                bad.append(f"{module}: {target}")
    assert not bad, "lazy imports of required modules:\n" + "\n".join(bad)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, target, _, type_only, _ in _internal_edges():
        if type_only or module == "monosem_lib" or module.endswith(".book"):
            continue  # package facades re-export; they are not part of a cycle
        if target in graph and target != module and not target.endswith(".book"):
            graph[module].add(target)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it"


def test_core_imports_need_only_torch_and_numpy():
    """``import monosem_lib`` (the flat API) loads no pandas, matplotlib or ipywidgets."""
    import subprocess
    import sys

    code = (
        "import sys, monosem_lib\n"
        "heavy = [m for m in ('pandas', 'matplotlib', 'ipywidgets', 'IPython') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]
