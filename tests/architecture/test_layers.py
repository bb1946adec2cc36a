"""The layout's rules, read from the source: the core has no import cycle (TYPE_CHECKING and
function-level imports count), never imports the Slack surface, and the surface uses the
core's public methods, never its store."""
from __future__ import annotations

import ast

from .imports import find_cycle, import_graph, modules

# What bot/ may import from the core besides the package itself: pure data and checks.
BOT_MAY_IMPORT = {"orchestrator", "orchestrator.states", "orchestrator.models", "orchestrator.check",
                  "orchestrator.config", "orchestrator.config_check", "orchestrator.crashpoints",
                  "orchestrator.suggest"}


def test_orchestrator_has_no_import_cycle():
    graph = import_graph("orchestrator")
    assert {"orchestrator.runner", "orchestrator.recovery"} <= graph["orchestrator.engine"]   # it reads them
    assert "orchestrator.world" in graph["orchestrator.runner"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_type_checking_and_late_imports():
    # a imports b only under TYPE_CHECKING, b imports a inside a function: still a cycle.
    graph = import_graph("tests/architecture/_cyclic")
    assert find_cycle(graph) == ["tests.architecture._cyclic.a", "tests.architecture._cyclic.b",
                                 "tests.architecture._cyclic.a"]


def test_orchestrator_never_imports_the_surface_or_slack():
    for name, path in modules("orchestrator").items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for target in targets:
                assert not target.startswith(("bot", "slack_bolt", "slack_sdk")), f"{name} imports {target}"


def test_the_surface_never_reaches_into_the_core_store():
    offenders = []
    for name, path in modules("bot").items():
        if name.startswith("bot.emulator"):
            continue   # the emulator is Slack's side, with its own state
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("store", "_runners", "world"):
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("orchestrator"):
                if node.module not in BOT_MAY_IMPORT:
                    offenders.append(f"{name}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Import):
                offenders += [f"{name}:{node.lineno} imports {a.name}" for a in node.names
                              if a.name.startswith("orchestrator.") and a.name not in BOT_MAY_IMPORT]
    assert offenders == [], "use the core's public API instead: " + ", ".join(offenders)
