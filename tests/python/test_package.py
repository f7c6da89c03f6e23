# SPDX-License-Identifier: MIT
"""The package's shape: every module imports on its own in a fresh interpreter, and the modules'
imports of each other form no cycle (a cycle works or fails depending on which module is
imported first, which is how the last one went unnoticed)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import httpcache

PACKAGE = pathlib.Path(httpcache.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _imports_of(module: str) -> set[str]:
    """The package's modules `module` imports (relative imports, at any depth in the file)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found & set(MODULES)


def test_every_module_is_one_of_the_named_jobs():
    assert set(MODULES) == {
        "_config", "_keys", "_codec", "_rules", "_headers", "_ttl", "_asyncio", "_early_hits", "_cached_call",
        "_injected",
        "_decorators", "_invalidation",
        "_backend",
        "_fields", "_routes", "_typed",
    }


def test_module_imports_form_no_cycle():
    graph = {m: _imports_of(m) for m in MODULES}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        assert m not in path, f"import cycle: {' -> '.join(path + [m])}"
        if m in done:
            return
        for dep in sorted(graph[m]):
            visit(dep, path + [m])
        done.add(m)

    for m in MODULES:
        visit(m, [])
    # The layering docs/design.md describes: configuration knows nothing of the decorators.
    assert not graph["_config"] & {"_cached_call", "_decorators", "_ttl"}
    assert not graph["_early_hits"] & {"_config", "_cached_call", "_decorators"}


def test_each_module_imports_alone_in_a_fresh_interpreter():
    for m in MODULES:
        r = subprocess.run(
            [sys.executable, "-c", f"import importlib; importlib.import_module('httpcache.{m}')"],
            capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 0, f"httpcache.{m}: {r.stderr}"
