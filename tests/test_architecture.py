"""The shape of the house, checked: the store owns its database, no module reaches into
another's private names, and the modules import each other without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("engine/**/*.py"), *ROOT.glob("indexes/**/*.py"), *ROOT.glob("web/**/*.py"),
                  ROOT / "cli.py", ROOT / "__init__.py", ROOT / "__main__.py"])


def module_name(path: Path) -> str:
    """The installed name: the repository root is the `simdex` package."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(("simdex",) + parts)


def private_names_we_define() -> set[str]:
    """Underscored names our own code defines: methods, functions, attributes set on self."""
    names = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_"):
                names.add(node.name)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr.startswith("_")):
                names.add(node.attr)
    return {name for name in names if not name.startswith("__")}


def test_no_module_touches_another_objects_private_names():
    ours = private_names_we_define()
    offences = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in ours
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert offences == []


def test_only_the_local_store_runs_sql():
    offences = []
    for path in SOURCES:
        if path.name in ("local.py", "migrations.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("conn", "execute", "executemany"):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert offences == []


def imports_of(path: Path) -> set[str]:
    """The project modules a module imports (at any depth of the file)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}")
                found.add(base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    known = {module_name(p) for p in SOURCES}
    return {m for m in found if m in known and m != name}


def test_no_import_cycles():
    graph = {module_name(p): imports_of(p) for p in SOURCES}
    packages = [module_name(p) for p in SOURCES if p.name == "__init__.py"]
    for package in packages:  # a package's __init__ is not an edge back
        for module in graph:
            graph[module].discard(package) if module.startswith(package + ".") else None
    cycles = []

    def visit(node, trail):
        for nxt in graph.get(node, ()):
            if nxt in trail:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif len(trail) < 12:
                visit(nxt, trail + [nxt])

    for module in graph:
        visit(module, [module])
    assert cycles == []


def test_the_wheel_holds_every_package_and_only_simdex():
    """pyproject.toml lists every package (a built wheel holds every module), all under `simdex`."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {module_name(path) for path in SOURCES if path.name == "__init__.py"}
    found |= {"simdex.engine.data", "simdex.web.static"}  # data folders, shipped as package data
    assert listed == found
    assert all(name == "simdex" or name.startswith("simdex.") for name in listed)
    assert config["package-dir"] == {"simdex": "."}
