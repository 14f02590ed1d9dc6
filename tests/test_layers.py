"""The layers meet at public seams: checked over the import graph and attribute access (Python's own parser,
not a pattern over the source), so private modules, private names and private attributes are all caught.

The rules (docs/development.md, "The layers"):

- a private module or name (a dotted component with a leading underscore) is imported only from inside the
  package that holds it: ``torchsvm.svm._base`` by ``torchsvm.svm``'s modules, ``torchsvm._sparse`` by
  ``torchsvm``'s (its subpackages included); never by ``lightning_modules``, ``scripts`` or ``benchmarks``;
- a private attribute of another object (``est._coef``, ``est._solve(...)``) is read only inside the
  estimators' package ``torchsvm.svm`` (whose ``problems`` module is the seam for everyone else);
- a private attribute is assigned only on ``self``, or on the estimator given to a fit step of
  ``torchsvm.svm.problems`` (the estimators' fit as functions, as scikit-learn's ``validate_data(est, X)``
  sets the estimator's input attributes): no other code sets another object's private state.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("torchsvm", "lightning_modules", "scripts", "benchmarks")
OWN_PACKAGES = ("torchsvm", "lightning_modules")
ESTIMATORS = "torchsvm.svm"
FIT_STEPS = "torchsvm.svm.problems"
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}  # public despite the underscore


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _is_package(dotted: str) -> bool:
    return (ROOT / dotted.replace(".", "/") / "__init__.py").is_file()


def _owner(dotted: str) -> str | None:
    """The package that holds the first private component of ``dotted`` (None: all public)."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            holder = ".".join(parts[:i])
            return holder if _is_package(holder) else holder.rpartition(".")[0]
    return None


def _imports(tree: ast.AST, package: str):
    """``(line, dotted name)`` of every name and module imported from the project's own packages."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] in OWN_PACKAGES:
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OWN_PACKAGES:
                    yield node.lineno, alias.name


def _on_own_object(node: ast.Attribute) -> bool:
    """``self.x``, ``cls.x`` or ``super().x``."""
    value = node.value
    if isinstance(value, ast.Name) and value.id in ("self", "cls"):
        return True
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"


def _violations(path: Path, module: str | None = None) -> list[str]:
    """The rule breaks in the file ``path`` (``module``: its dotted name, by default from its place in the tree)."""
    module = _module_name(path) if module is None else module
    package = _package_of(module, path)
    where_of = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for line, dotted in _imports(tree, package):
        owner = _owner(dotted)
        if owner is not None and not (package == owner or package.startswith(owner + ".")):
            found.append(f"{where_of}:{line} imports {dotted} (private to {owner})")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr",
                "hasattr", "delattr") and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            # getattr(est, "_x") is est._x by another name
            target = node.args[0]
            own = isinstance(target, ast.Name) and target.id in ("self", "cls")
            inside = package == ESTIMATORS or package.startswith(ESTIMATORS + ".")
            if not own and ((node.func.id in ("setattr", "delattr") and module != FIT_STEPS) or not inside):
                found.append(f"{where_of}:{node.lineno} {ast.unparse(node)} (another object's private state)")
            continue
        if not (isinstance(node, ast.Attribute) and _private(node.attr)) or node.attr in NAMEDTUPLE_API:
            continue
        if _on_own_object(node):
            continue
        where = f"{where_of}:{node.lineno}"
        if isinstance(node.ctx, ast.Store | ast.Del):  # a target of =, +=, a for loop, a tuple on the left
            if module == FIT_STEPS:
                continue
            found.append(f"{where} assigns {ast.unparse(node)} (another object's private state)")
        elif not (package == ESTIMATORS or package.startswith(ESTIMATORS + ".")):
            found.append(f"{where} reads {ast.unparse(node)} (private; use a public seam)")
    return found


def _product_files() -> list[Path]:
    return [p for top in PRODUCT for p in sorted((ROOT / top).rglob("*.py"))]


def test_layers_meet_at_public_seams():
    files = _product_files()
    assert len(files) > 50  # the whole product was read
    offenders = [v for p in files for v in _violations(p)]
    assert not offenders, "\n".join(offenders)


def test_the_check_catches_what_it_should(tmp_path):
    """The rules on a made-up module: a private import across packages, a private read outside the
    estimators and a private assignment on another object are each reported; their public forms are not."""
    bad = tmp_path / "probe.py"  # read as the module scripts.probe
    bad.write_text("from torchsvm.svm._base import BaseLibSVM\nfrom torchsvm.svm import problems\n"
                   "def f(est, other):\n    other._gamma = 1.0\n    est.coef_, other._b = 1, 2\n    getattr(est, '_probA')\n"
                   "    return est._coef, problems.solve, est.coef_\n")
    found = _violations(bad, module="scripts.probe")
    assert any("imports torchsvm.svm._base.BaseLibSVM" in v for v in found), found
    assert any("reads est._coef" in v for v in found), found
    assert any("assigns other._gamma" in v for v in found), found
    assert any("assigns other._b" in v for v in found), found
    assert any("getattr(est, '_probA')" in v for v in found), found
    assert len(found) == 5, found


def _runtime_imports(tree: ast.Module, package: str):
    """The dotted names a module imports when it runs: at load and inside functions alike (a deferred import
    that dodges a circle is still one), all but ``if TYPE_CHECKING:`` blocks (annotations only)."""
    def walk(node):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield from walk(child)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for _, name in _imports(ast.Module(body=[node], type_ignores=[]), package):
                yield name
        else:
            for child in ast.iter_child_nodes(node):
                yield from walk(child)

    yield from walk(tree)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's ``__init__`` under the package's name; edges to a
    module's own enclosing packages left out: those are being loaded already)."""
    graph: dict[str, set[str]] = {}
    for root in OWN_PACKAGES:
        for path in sorted((ROOT / root).rglob("*.py")):
            module = _module_name(path)
            targets = set()
            for dotted in _runtime_imports(ast.parse(path.read_text()), _package_of(module, path)):
                while dotted and not (_is_package(dotted) or (ROOT / (dotted.replace(".", "/") + ".py")).is_file()):
                    dotted = dotted.rpartition(".")[0]  # a name imported from a module: the module
                if dotted and dotted != module and not module.startswith(dotted + "."):
                    targets.add(dotted)
            graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert _cycles(_import_graph()) == []


def test_the_circle_check_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_deferred_imports_count_and_annotation_imports_do_not():
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from torchsvm.svm import SVC\n"
              "def f():\n    from torchsvm.kernels import Kernel\n    return Kernel\n")
    assert list(_runtime_imports(ast.parse(source), "torchsvm")) == ["torchsvm.kernels.Kernel"]
