"""The arrows of the layout, read from the source: scripts → service → replay → bandits,
never back up, and no module that imports itself back through others."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("bandits", "service", "replay")
#: What each package may import of the others.
ALLOWED = {"bandits": set(), "replay": {"bandits"}, "service": {"bandits", "replay"}}


def _modules() -> dict:
    """``{module name: path}`` of every module of the three packages."""
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> set:
    """The modules of the three packages that ``name`` imports (at any depth of its code)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from pkg import module` imports the module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_packages_below_it(package):
    wrong = sorted((name, target) for name, targets in GRAPH.items() if name.split(".")[0] == package
                   for target in targets
                   if target.split(".")[0] not in ALLOWED[package] | {package})
    assert not wrong, f"{package} imports above itself: {wrong}"


def test_no_module_imports_itself_back():
    """Depth-first search for a cycle; a package's ``__init__`` importing its own
    modules is not one (they import the package only while it is being built)."""
    state, path = {}, []

    def visit(name):
        state[name] = "open"
        path.append(name)
        for target in GRAPH[name]:
            if name.startswith(target + "."):
                continue  # a module's own package __init__
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_rooms_of_service_import_one_way():
    """Subpackages and top-level modules of service, each taken as one room, form no
    cycle either (e.g. store never imports api, which imports store)."""
    def room(name):
        return ".".join(name.split(".")[:2])

    rooms = {}
    for name, targets in GRAPH.items():
        if name.startswith("service."):
            rooms.setdefault(room(name), set()).update(
                room(t) for t in targets if t.startswith("service.") and room(t) != room(name))
    done: set = set()

    def visit(name, path):
        for target in rooms.get(name, ()):
            assert target not in path, "rooms in a cycle: " + " -> ".join(path + [target])
            if target not in done:
                visit(target, path + [target])
        done.add(name)

    for name in sorted(rooms):
        visit(name, [name])
