"""The shape of the code's dependencies: no import cycle anywhere in the apps or the engine, and
no import inside a function body unless its reason is written beside it. import-linter's
contracts (pyproject.toml, `lint-imports` in `make test`) hold the direction of the layers;
these hold what it does not check."""

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crm", "campaigns", "workers", "marketing_ai")


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = {m for m in graph.modules if ".migrations" not in m}
    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "a.one", "a.two", "a.three"):
        graph.add_module(name)
    graph.add_import(importer="a.one", imported="a.two")
    graph.add_import(importer="a.two", imported="a.one")
    graph.add_import(importer="a.three", imported="a.one")
    assert _cycles(graph, set(graph.modules)) == [["a.one", "a.two"]]


def _function_imports(path: Path):
    """(line, imported module, function name) of each import inside a function body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if function is not None and isinstance(child, ast.Import | ast.ImportFrom):
                if isinstance(child, ast.Import):
                    module = child.names[0].name
                else:
                    module = "." * child.level + (child.module or "")
                found.append((child.lineno, module, function))
            visit(child, function)

    visit(tree, None)
    return found


# A module of ours that brings one of these may wait for the call (the web process loads none).
HEAVY = ("numpy", "lightgbm", "torch", "scipy", "sklearn", "scikit-learn", "pandas", "transformers")


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    relative = path.relative_to(root)
    lines = path.read_text().splitlines()
    in_tasks = "tasks" in relative.with_suffix("").parts
    offences = []
    for line, module, function in _function_imports(path):
        if relative.name == "apps.py" and function == "ready":
            continue  # Django's place for what must wait until the models are loaded
        ours = module.startswith(".") or module.split(".")[0] in PACKAGES
        # A comment on the import, or above the run of imports it belongs to.
        first = line - 1
        while first > 0 and lines[first - 1].strip().startswith(("import ", "from ")):
            first -= 1
        block = lines[first:line]
        said_why = any("#" in text for text in block) or lines[first - 1].strip().startswith("#")
        where = f"{relative}:{line} imports {module} in {function}()"
        heavy = any(name in text.lower() for text in block + [lines[first - 1]] for name in HEAVY)
        if ours and not in_tasks and not (said_why and heavy):
            offences.append(
                f"{where}: a module of ours, imported at the top, or inside only where it brings a "
                "heavy library (numpy, LightGBM...) into the process and its comment says so"
            )
        elif not said_why:
            offences.append(f"{where}: say why it waits for the call (a comment beside it)")
    return offences


def test_imports_inside_functions_are_heavy_libraries_with_their_reason():
    """Allowed inside a function: a heavy library (torch, transformers, LightGBM...) with a
    comment that says why, anywhere; a module of ours in a task body (one that loads such a
    library into the worker and not into the web), with its comment too, or elsewhere only when
    it brings such a library and its comment names it (a page or a decision that needs numpy
    only when it is used, so the web process stays light)."""
    offences = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                offences += _offences(path)
    assert offences == []


def test_the_import_rule_catches_an_unexplained_import(tmp_path):
    sample = tmp_path / "crm" / "sample.py"
    sample.parent.mkdir()
    sample.write_text(
        "def f():\n    import torch\n    return torch\n\n"
        "def g():\n    from crm import models  # a reason is no excuse here\n    return models\n"
    )
    offences = _offences(sample, root=tmp_path)
    assert len(offences) == 2
    assert "imports torch in f()" in offences[0] and "comment" in offences[0]
    assert "imports crm in g()" in offences[1] and "top" in offences[1]
