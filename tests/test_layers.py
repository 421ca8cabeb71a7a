"""One-way imports: a package imports only the layers below it, and playing needs no PyTorch.

    core ← export ← train            core ← live ← gui            core, live ← evaluation
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "export", "train", "live", "gui", "evaluation")
# what each package may import of the project (itself included)
ALLOWED = {
    "core": {"core"},
    "export": {"core", "export"},
    # train.instrument is one command from recordings to a bundle and presets: it drives export and writes
    # presets through live.preset (the one writer of preset files)
    "train": {"core", "train", "export", "live"},
    "live": {"core", "live"},
    "gui": {"core", "live", "gui"},
    "evaluation": {"core", "live", "evaluation"},  # reads corpora through core.manifest, melodies through core.pitch
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def import_graph() -> dict[str, set[str]]:
    graph = {p: set() for p in PACKAGES}
    for p in PACKAGES:
        for f in (ROOT / p).glob("*.py"):
            graph[p] |= project_imports(f)
    return graph


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package):
    offenders = {}
    for f in sorted((ROOT / package).glob("*.py")):
        bad = project_imports(f) - ALLOWED[package]
        if bad:
            offenders[f.name] = sorted(bad)
    assert not offenders, f"{package} imports above its layer: {offenders}"


def module_imports(path: Path) -> set[str]:
    """The project modules a file imports (function-level imports included), as dotted names."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.split(".")[0] in PACKAGES and (ROOT / (n.replace(".", "/") + ".py")).is_file()}
    return found


def _assert_acyclic(graph: dict[str, set[str]]) -> None:
    state = {}

    def visit(n, path):
        if state.get(n) == "open":
            raise AssertionError("import cycle: " + " → ".join(path + [n]))
        if state.get(n) == "done":
            return
        state[n] = "open"
        for m in sorted(graph[n]):
            visit(m, path + [n])
        state[n] = "done"

    for p in sorted(graph):
        visit(p, [])


def test_the_package_graph_has_no_cycle():
    _assert_acyclic({p: deps - {p} for p, deps in import_graph().items()})


def test_the_module_graph_has_no_cycle():
    """Within a package too: two modules that import each other cannot be understood (or changed) one at a time."""
    modules = {f"{p}.{f.stem}": f for p in PACKAGES for f in (ROOT / p).glob("*.py") if f.stem != "__init__"}
    graph = {m: {d for d in module_imports(f) if d != m and d in modules} for m, f in modules.items()}
    _assert_acyclic(graph)


def test_playing_loads_no_pytorch():
    code = ("import sys; import live.engine, live.render, live.bench, live.preset, live.bundle, live.audio, "
            "live.__main__, gui.panel, gui.meters, core.cli, core.degrade, core.audio, core.sampling; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'encodec')); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
