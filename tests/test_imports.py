"""`import cfgsched` and the commands that do not need them stay free of torch/matplotlib."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.golden import ROOT

HEAVY = ("torch", "matplotlib")


def imported_modules(code: str) -> set[str]:
    """Top-level modules that ``python -X importtime -c code`` imported (it must exit 0/1)."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr[
        -2000:
    ]
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_import_cfgsched_is_light() -> None:
    mods = imported_modules("import cfgsched")
    assert "cfgsched" in mods
    assert not mods & {*HEAVY, "numpy"}, mods & {*HEAVY, "numpy"}


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
    ],
)
def test_start_up_imports_no_numpy(args: list[str]) -> None:
    code = "import sys\nfrom cfgsched.cli import main\n"
    code += f"sys.argv = ['cfgsched', *{args!r}]\nmain()\n"
    mods = imported_modules(code)
    assert "cfgsched" in mods
    assert not mods & {*HEAVY, "numpy"}, f"{args}: imported {mods & {*HEAVY, 'numpy'}}"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["convert", "sample_cfgs/yolov4.cfg"],
        ["explain", "sample_cfgs/yolov4.cfg"],
        ["lint", "sample_cfgs/yolov4.cfg"],
        ["adjust", "sample_cfgs/yolov4.cfg", "--gpus", "4"],
    ],
)
def test_light_commands_do_not_import_torch_or_matplotlib(args: list[str]) -> None:
    code = "import sys\nfrom cfgsched.cli import main\n"
    code += f"sys.argv = ['cfgsched', *{args!r}]\nmain()\n"
    mods = imported_modules(code)
    assert "cfgsched" in mods
    assert not mods & set(HEAVY), f"{args}: imported {mods & set(HEAVY)}"


def test_dir_shows_the_public_names_and_no_import_helpers() -> None:
    """``dir(cfgsched)`` (and tab completion) lists the lazy exports, not the module's
    own imports."""
    import cfgsched

    names = set(dir(cfgsched))
    assert {"load", "parse", "DarknetLR", "build_optimizer", "NetSchedule"} <= names
    assert set(cfgsched.__all__) <= names
    assert not {"Any", "TYPE_CHECKING", "importlib", "annotations"} & names


# ------------------------------------------------------------------ the layout (issue 13)

PKG = ROOT / "cfgsched"
#: The floors, lowest first. A module imports only from lower floors, or from its own
#: package on its own floor (codegen/ and tools/ share a floor: neither imports the other).
#: ``cfgsched`` is the package's __init__ alone (its lazy exports are not imports).
FLOORS: tuple[tuple[str, ...], ...] = (
    ("cfgsched.errors", "cfgsched.text"),
    ("cfgsched.files", "cfgsched.kernel"),
    ("cfgsched.schedule",),
    ("cfgsched", "cfgsched.reader", "cfgsched.options", "cfgsched.weights"),
    # policies/: each policy's formula, boundaries, phases, code text, native parts
    ("cfgsched.policies",),
    ("cfgsched.boundaries", "cfgsched.layers", "cfgsched.oracle"),
    ("cfgsched.module_record", "cfgsched.run"),
    ("cfgsched.adapters", "cfgsched.multigpu"),
    ("cfgsched.codegen", "cfgsched.tools"),
    ("cfgsched.cli",),
    ("cfgsched.__main__",),
)
#: Import names that count as heavy wherever they are imported.
HEAVY_MODULES = {
    "torch",
    "matplotlib",
    "numpy",
    "mmengine",
    "ultralytics",
    "lightning",
    "pytorch_lightning",
    "tensorboard",
}
#: (importing module, imported cfgsched module) pairs imported inside a function only
#: because the imported module pulls numpy or torch, which a numpy-free start needs to
#: avoid (checked below: each one does pull a heavy module).
LAZY_HEAVY = {
    # Run's scalar methods serve convert and the schedulers without numpy
    ("cfgsched.run", "cfgsched.oracle"),
    # the commands import their tool when they run, so `cfgsched --help` stays light
    ("cfgsched.cli.diff", "cfgsched.tools.diff"),
    ("cfgsched.cli.explain", "cfgsched.tools.explain"),
    ("cfgsched.cli.lint", "cfgsched.tools.lint"),
    ("cfgsched.cli.explain", "cfgsched.tools.lint"),
    ("cfgsched.cli.plot", "cfgsched.tools.plot"),
    ("cfgsched.cli.plot", "cfgsched.tools.export"),
    ("cfgsched.tools.editor", "cfgsched.oracle"),
    # torch, only for the outputs that step torch schedulers
    ("cfgsched.tools.stepping", "cfgsched.adapters.darknet_lr"),
    ("cfgsched.tools.diff", "cfgsched.adapters.native"),
    ("cfgsched.codegen.python", "cfgsched.adapters.native"),
    ("cfgsched.codegen.python", "cfgsched.adapters.optim"),
    ("cfgsched.tools.layer_check", "cfgsched.adapters.optim"),
    # numpy, only for a policy's vectorised formula (the scalar one is standard library)
    *(
        (f"cfgsched.policies.{p}", "cfgsched.kernel.vector")
        for p in "burn_in exp poly random sgdr sigmoid step steps".split()
    ),
    # numpy, only for the fitted approximations
    ("cfgsched.codegen", "cfgsched.adapters.approx"),
    ("cfgsched.tools.plot", "cfgsched.adapters.approx"),
}
MAX_LAZY = 10  # non-heavy imports inside functions, across the library
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def _imports(name: str, tree: ast.Module, known: set[str]) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for each import outside ``if TYPE_CHECKING``;
    ``from a import b`` names the module a.b when it exists."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert not child.level, f"{name}: a relative import"
                base = child.module or ""
                subs = {f"{base}.{a.name}" for a in child.names} & known
                found.extend((m, in_function) for m in sorted(subs) or [base])
            inner = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef)
            )
            visit(child, inner)

    visit(tree, False)
    return found


def _floor(module: str) -> tuple[int, str]:
    """(floor, the FLOORS entry) of a cfgsched module."""
    for level, entries in enumerate(FLOORS):
        for entry in entries:
            if module == entry or (
                entry != "cfgsched" and module.startswith(entry + ".")
            ):
                return level, entry
    raise AssertionError(f"{module} is on no floor: add it to FLOORS")


def _measures() -> dict[str, list[str]]:
    """Every breach of the layout rules, by rule (empty lists: the layout holds)."""
    trees = _modules()
    known = set(trees)
    graph: dict[str, set[str]] = {m: set() for m in trees}
    top_level: dict[str, set[str]] = {m: set() for m in trees}
    out: dict[str, list[str]] = {"upward": [], "lazy": [], "long": [], "circles": []}
    for name, tree in trees.items():
        for target, lazy in _imports(name, tree, known):
            root = target.split(".")[0]
            if not lazy:
                top_level[name].add(target)
            if target in known and target != name:
                graph[name].add(target)
                (lo, lo_entry), (hi, hi_entry) = _floor(target), _floor(name)
                if lo > hi or (lo == hi and lo_entry != hi_entry):
                    out["upward"].append(f"{name} -> {target}")
            if lazy and root not in HEAVY_MODULES and (name, target) not in LAZY_HEAVY:
                out["lazy"].append(f"{name}: {target}")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out["long"].append(f"{name}.{node.name}: {lines} lines")
    out["circles"] = _circles(graph)
    for importer, target in sorted(
        LAZY_HEAVY
    ):  # the allowance names real heavy imports
        if importer in known and target in known:
            assert _pulls_heavy(target, top_level), f"{target} imports nothing heavy"
    return out


def _pulls_heavy(module: str, top_level: dict[str, set[str]]) -> bool:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for target in top_level.get(m, ()):
            if target.split(".")[0] in HEAVY_MODULES:
                return True
            todo.append(target)
    return False


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """The import cycles, one per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                cycles.append(" <-> ".join(sorted([v, *component])))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_layout_has_no_circle_no_upward_import_few_lazy_imports_short_functions() -> (
    None
):
    """0 import circles, 0 imports from a lower floor into a higher one, at most
    MAX_LAZY non-heavy imports inside functions, no function over MAX_FUNCTION_LINES."""
    m = _measures()
    assert m["circles"] == [], m["circles"]
    assert m["upward"] == [], m["upward"]
    assert len(m["lazy"]) <= MAX_LAZY, m["lazy"]
    assert m["long"] == [], m["long"]


def test_the_layout_measure_sees_a_breach() -> None:
    """The measure reads what the source imports (a lazy upward import counts twice)."""
    code = "def f():\n    from cfgsched.cli import kit\n    import re\n"
    tree = ast.parse(code)
    known = {"cfgsched.cli", "cfgsched.cli.kit", "cfgsched.run"}
    assert _imports("cfgsched.run", tree, known) == [
        ("cfgsched.cli.kit", True),
        ("re", True),
    ]
    assert _floor("cfgsched.cli.kit")[0] > _floor("cfgsched.run")[0]
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == ["a <-> b"]
