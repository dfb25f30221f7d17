"""The code's layout rules, checked on the source with ``ast``.

No private name crosses a package boundary. A *package* is a directory of policykit
(``policykit``, ``policykit/engine``, ``policykit/rules`` ...). A private name (one
starting with ``_``, not a dunder) is either a module (``engine/_batch.py``) or a name in a
module (``rules/_base.py``'s ``_check_field``):

* a private name in a module may be used by the modules of its own directory only;
* a private module may be used by its own directory and the directories below it (a
  subpackage is part of its parent: ``policykit/_optional.py`` serves ``policykit/audit``),
  never by its parent or a sibling (``policykit/audit`` may not import ``engine/_batch``).

Another package's internals are reached through its public names: its ``__init__`` or a
module without an underscore (``policykit/rules/internal.py``).

And every error class policykit raises is defined in policykit/errors.py."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import policykit
from policykit.errors import PolicyKitError

ROOT = Path(policykit.__file__).parent

#: (importing module, private dotted name) pairs allowed to cross anyway, each with the
#: reason in a comment. Keep it empty.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return name in MODULES and MODULES[name].name == "__init__.py"


def _package_of(name: str) -> str:
    """The directory (as a dotted name) ``name`` lives in: a package is its own."""
    return name if _is_package(name) else name.rpartition(".")[0]


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _crossing(importer: str, dotted: str) -> bool:
    """Whether ``importer`` (a module) may not use ``dotted`` (module path + name)."""
    own = _package_of(importer)
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if i and _private(part):
            owner = _package_of(".".join(parts[:i]))
            if own == owner:
                continue
            is_module = ".".join(parts[: i + 1]) in MODULES
            if not (is_module and own.startswith(owner + ".")):
                return True
            # a parent's private module: its private names are still its directory's own
    return False


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(importer).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _dotted(node: ast.expr) -> tuple[str, list[str]] | None:
    """``a.b.c`` as ("a", ["b", "c"]), or None when the chain does not start at a name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, attrs[::-1]
    return None


def crossings(importer: str, source: str) -> list[str]:
    """The private names of other packages ``source`` (the module ``importer``) uses, as
    ``line: dotted.name``: imported (``from X import _y``, ``from X._m import y``,
    ``import X._m``) or reached as an attribute of an imported module (``X._y``)."""
    tree = ast.parse(source)
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> the policykit module it is bound to

    def check(line: int, dotted: str) -> None:
        if (dotted.startswith("policykit.") and _crossing(importer, dotted)
                and (importer, dotted) not in ALLOWED):
            found.append(f"{line}: {dotted}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(importer, node)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                check(node.lineno, full)
                if full in MODULES:
                    modules[alias.asname or alias.name] = full
        elif isinstance(node, ast.Import):
            for alias in node.names:
                check(node.lineno, alias.name)
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    modules[head] = head
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            looked_up = _module_lookup(node.value)  # m = sys.modules.get("policykit.x")
            if looked_up is not None:
                check(node.lineno, looked_up)
                modules[node.targets[0].id] = looked_up
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain[0] in modules and any(_private(a) for a in chain[1]):
                check(node.lineno, ".".join([modules[chain[0]], *chain[1]]))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2 \
                and isinstance(node.args[0], ast.Name) and node.args[0].id in modules \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            check(node.lineno, f"{modules[node.args[0].id]}.{node.args[1].value}")
    return sorted(set(found), key=lambda s: int(s.split(":")[0]))


def _module_lookup(node: ast.expr) -> str | None:
    """The module name of ``sys.modules.get("name")`` or ``sys.modules["name"]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "get" and ast.unparse(node.func.value) == "sys.modules" \
            and node.args and isinstance(node.args[0], ast.Constant):
        name = node.args[0].value
    elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "sys.modules" \
            and isinstance(node.slice, ast.Constant):
        name = node.slice.value
    else:
        return None
    return name if isinstance(name, str) else None


def test_no_private_name_crosses_a_package_boundary() -> None:
    bad = {name: found for name, path in MODULES.items()
           if (found := crossings(name, path.read_text(encoding="utf-8")))}
    assert bad == {}


def test_the_check_sees_each_kind_of_crossing() -> None:
    """The check itself can fail: one sample per kind it must catch, and the uses it must
    allow."""
    audit = "policykit.audit._audit"
    assert crossings(audit, "from ..engine._batch import run_batch") == [
        "1: policykit.engine._batch.run_batch"]
    assert crossings(audit, "from ..rules import _base") == ["1: policykit.rules._base"]
    assert crossings(audit, "from ..policy import _combine") == ["1: policykit.policy._combine"]
    assert crossings(audit, "import policykit.engine._batch") == ["1: policykit.engine._batch"]
    assert crossings(audit, "from .. import policy\npolicy._combine") == [
        "2: policykit.policy._combine"]
    assert crossings("policykit", "from .rules._registry import SHAPES") == [
        "1: policykit.rules._registry.SHAPES"]  # a parent into its child's private module
    # allowed: within a directory, and a parent's private module from below it
    assert crossings("policykit.rules.cap", "from ._base import _check_field") == []
    assert crossings(audit, "from ._readers import read_records") == []
    assert crossings(audit, "from .._optional import optional_import") == []
    assert crossings(audit, "from .._optional import _missing") == [
        "1: policykit._optional._missing"]  # a parent's private module, a private name in it
    assert crossings("policykit.cli", "from .policy import _combine") == []
    # a module looked up in sys.modules, and a private name read from it by getattr
    looked_up = 'import sys\nm = sys.modules.get("policykit.audit._readers")\nm.read_records'
    assert crossings("policykit.models.registry", looked_up) == [
        "2: policykit.audit._readers"]
    assert crossings("policykit.rules._registry",
                     'import sys\ns = sys.modules["policykit._schema"]\ns._policy_schema') == [
        "3: policykit._schema._policy_schema"]
    assert crossings("policykit.models.registry", "from .. import policy as p\n"
                     "getattr(p, 'version_text')\ngetattr(p, '_combine')") == [
        "3: policykit.policy._combine"]


def _declared_private_attributes() -> dict[str, set[str]]:
    """Private attribute names, each with the packages whose classes declare it (a method,
    a class-level name or ``__slots__`` entry, or ``self._x = ...`` in a method)."""
    declared: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        package = _package_of(name)
        for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(cls, ast.ClassDef):
                continue
            names: list[str] = []
            for node in cls.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.append(node.name)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.append(node.target.id)
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            names.append(target.id)
                            if target.id == "__slots__" and isinstance(node.value,
                                                                       ast.Tuple | ast.List):
                                names += [e.value for e in node.value.elts
                                          if isinstance(e, ast.Constant)
                                          and isinstance(e.value, str)]
            for inner in ast.walk(cls):
                if isinstance(inner, ast.Attribute) and isinstance(inner.ctx, ast.Store) \
                        and isinstance(inner.value, ast.Name) and inner.value.id == "self":
                    names.append(inner.attr)
            for attr in names:
                if _private(attr):
                    declared.setdefault(attr, set()).add(package)
    return declared


#: (module, attribute) pairs allowed to read another package's private attribute anyway,
#: each with the reason. Keep it empty.
ALLOWED_ATTRIBUTES: frozenset[tuple[str, str]] = frozenset()


def test_no_private_attribute_of_another_package_is_read() -> None:
    """``obj._x`` (obj not self or cls) where only classes of other packages declare
    ``_x``: the object's internals reached past its public names (``policy._versions``
    from audit/). Names no policykit class declares (a library's) are not judged."""
    declared = _declared_private_attributes()
    bad: list[str] = []
    for name, path in MODULES.items():
        package = _package_of(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            owners = declared.get(node.attr, set())
            if owners and package not in owners \
                    and (name, node.attr) not in ALLOWED_ATTRIBUTES:
                bad.append(f"{name}:{node.lineno}: {ast.unparse(node)} "
                           f"(declared in {sorted(owners)})")
    assert bad == []


def _error_classes() -> set[type[PolicyKitError]]:
    for info in pkgutil.walk_packages(policykit.__path__, "policykit."):
        if info.name.startswith("policykit.testing"):
            continue  # the pytest plugin, imported on its own
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency that is not installed
            continue
    found: set[type[PolicyKitError]] = set()
    todo: list[type[PolicyKitError]] = [PolicyKitError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("policykit") and cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_defined_in_errors_py() -> None:
    elsewhere = sorted(f"{c.__module__}.{c.__qualname__}" for c in _error_classes()
                       if c.__module__ != "policykit.errors")
    assert elsewhere == []


def test_the_errors_docstring_names_every_error_class() -> None:
    import policykit.errors as errors

    doc = inspect.getdoc(errors) or ""
    missing = sorted(c.__name__ for c in _error_classes() if c.__name__ not in doc)
    assert missing == []


def test_the_public_errors_are_exported_from_policykit() -> None:
    """Every error class a user catches by name is in ``policykit.__all__``; the others are
    caught through a public base, listed here with it."""
    through_base = {"MissingBackendError", "DurableAdapterError", "DurableUnavailable",
                    "RulesetSpecError", "MessageError", "DurableCapacityError",
                    "DurableEngineError", "DurableActionError", "RulesetClosedError",
                    "RuleValueError"}  # internal: load turns it into PolicyFileError
    names = {c.__name__ for c in _error_classes()}
    assert names - through_base <= set(policykit.__all__)
    assert through_base <= names  # the list above names real classes


def test_the_errors_docstring_tree_is_the_class_tree() -> None:
    """Each class sits under each of its policykit bases in the docstring's tree, and under
    nothing else; a builtin named beside it, ``(ValueError)``, is one of its bases."""
    import re

    import policykit.errors as errors

    doc = inspect.getdoc(errors) or ""
    tree = doc.split("::", 1)[1].strip("\n").split("\n\n", 1)[0]
    classes = {c.__name__: c for c in _error_classes()}
    parents: dict[str, set[str]] = {}
    stack: list[str] = []
    for line in tree.splitlines():
        branch = line.find("── ")
        if branch < 0 and stack:
            continue  # a description's second line
        depth = 0 if branch < 0 else (branch - 5) // 4 + 1  # "    ├── " is depth 1
        head = re.split(r"\s{2,}", line[branch + 3 if branch >= 0 else 0:].strip())[0]
        listed = re.findall(r"([A-Z]\w+)(?: \((\w+)\))?", head)
        assert listed, line
        del stack[depth:]
        for name, builtin in listed:
            cls = classes[name]
            if builtin:
                assert builtin in {b.__name__ for b in cls.__mro__}, line
            if stack:
                parents.setdefault(name, set()).add(stack[-1])
        stack.append(listed[-1][0])
    for name, cls in classes.items():
        own = {b.__name__ for b in cls.__bases__ if b.__name__ in classes}
        assert parents.get(name, set()) == own, name
