"""The house's walls: the decision policy runs without the actor runtime, the engine
never loads the offline lab, and no module imports itself through others.

The policy is shared by the router, `whatif`, `forecast` and the lab; if it pulled in
the runtime, an offline evaluation would start an event loop's worth of imports, and a
change to the driver could change what the lab measures.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "orchestrator", "tools")


def _loaded_after(statement: str) -> list[str]:
    probe = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()


def test_the_policy_imports_without_the_actor_runtime() -> None:
    modules = sorted(p.stem for p in (ROOT / "actors" / "policy").glob("*.py") if p.stem != "__init__")
    loaded = _loaded_after("; ".join(f"import actors.policy.{m}" for m in modules))
    forbidden = ("actors.runtime", "actors.router", "actors.ledger.actor", "orchestrator", "anyio", "trio", "aiohttp")
    assert [m for m in loaded if m.startswith(forbidden)] == []


def test_the_engine_never_loads_the_offline_lab() -> None:
    loaded = _loaded_after("import orchestrator, orchestrator.assembly, orchestrator.server, actors.router.router")
    assert [m for m in loaded if m.startswith("orchestrator.lab")] == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at any depth of the file (a lazy import is still an edge)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def test_the_import_graph_has_no_circle() -> None:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    known = {_module_name(p) for p in files}
    graph = {_module_name(p): _imports(p, known) - {_module_name(p)} for p in files}
    packages = {name for name in known if (ROOT / name.replace(".", "/") / "__init__.py").exists()}
    for name in graph:  # `from package import module` names the package too; only the module is an edge
        graph[name] -= packages
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []
