"""The project's shape: no import cycle among its modules (imports inside functions
included), packages that import only downward, library code that never imports a
command-line script, no two modules or public classes of one name, one tagger registry that
the documentation's table of taggers is made from, and an architecture page whose Layout
section names every module."""

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from stemeval import taggers

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("AST", "stemeval")
SCRIPTS = {path.stem for path in ROOT.glob("*.py")}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules():
    found = {module_name(path): path for package in PACKAGES
             for path in (ROOT / package).rglob("*.py")}
    found.update({name: ROOT / f"{name}.py" for name in SCRIPTS})
    return found


def imports(path, name, modules):
    """The project modules ``path`` imports anywhere in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in modules}
    return found - {name}


def import_graph():
    modules = project_modules()
    return {name: imports(path, name, modules) for name, path in modules.items()}


def test_no_import_cycle():
    try:
        tuple(TopologicalSorter(import_graph()).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_a_cycle_would_be_found():
    graph = import_graph()
    graph["stemeval.common.errors"] = graph["stemeval.common.errors"] | {"stemeval.commands"}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError:
        return
    raise AssertionError("the cycle stemeval.commands -> stemeval.common.errors -> "
                         "stemeval.commands was not seen")


# stemeval's packages, lowest first: a module imports from its own package and from those
# before it, never from one after it (imports inside functions included). The public API
# (stemeval/__init__.py, stemeval.api) sits above them all.
LAYERS = ("common", "labels", "audio", "speech", "weights", "datasets", "taggers", "runfiles",
          "engine", "scoring", "report", "analyses", "distances", "sweep", "commands", "api")


def upward_imports(graph):
    """``(importer, imported)`` pairs of stemeval modules that point up the layers."""
    def layer(name):
        parts = name.split(".")
        return LAYERS.index(parts[1]) if parts[1:2] and parts[1] in LAYERS else len(LAYERS)

    return sorted((name, target) for name, targets in graph.items()
                  if name.startswith("stemeval") for target in targets
                  if target.startswith("stemeval") and layer(target) > layer(name))


def test_packages_import_only_downward():
    packages = {path.name for path in (ROOT / "stemeval").iterdir()
                if (path / "__init__.py").exists()}
    assert packages == set(LAYERS) - {"api"}, "a package missing from LAYERS, or gone"
    assert upward_imports(import_graph()) == []


def test_an_upward_import_would_be_found():
    graph = import_graph()
    graph["stemeval.audio.decode"] = graph["stemeval.audio.decode"] | {"stemeval.engine.run"}
    assert upward_imports(graph) == [("stemeval.audio.decode", "stemeval.engine.run")]


def test_no_two_modules_or_public_classes_share_a_name():
    """Each module of stemeval/ has a name of its own (a command's module is named by its
    command, under ``stemeval.commands``, and may share a package's name), and so has each
    public class."""
    modules = [path for path in (ROOT / "stemeval").rglob("*.py")
               if path.name not in ("__init__.py", "__main__.py")
               and path.parent.name != "commands"]
    names = [path.stem for path in modules] + [
        path.name for path in (ROOT / "stemeval").iterdir() if (path / "__init__.py").exists()]
    assert sorted({name for name in names if names.count(name) > 1}) == []
    classes = {}
    for path in (ROOT / "stemeval").rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                classes.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {name: found for name, found in classes.items() if len(found) > 1} == {}


def test_library_code_imports_no_script():
    offenders = {name: sorted(targets & SCRIPTS) for name, targets in import_graph().items()
                 if name.startswith("stemeval") and targets & SCRIPTS}
    assert offenders == {}


def test_the_tagger_modules_need_no_ast_model():
    """A tagger other than the AST loads neither the AST's model code nor its weights code."""
    graph = import_graph()
    for name in ("stemeval.taggers.panns", "stemeval.taggers.passt", "stemeval.taggers.clap"):
        reached, todo = set(), [name]
        while todo:
            for target in graph[todo.pop()] - reached:
                reached.add(target)
                todo.append(target)
        assert not reached & {"stemeval.taggers.ast_model", "stemeval.taggers.ast_checkpoint"}, name


def doc(page):
    """A documentation page (``docs/``), which now holds what the README once did."""
    return (ROOT / "docs" / page).read_text(encoding="utf-8")


def test_readme_tagger_table_is_the_registry():
    assert "\n".join(taggers.markdown_table()) in doc("reference/taggers.md")


def test_readme_layout_names_every_module_and_nothing_else():
    page = doc("contributing/architecture.md")
    section = page.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w./-]+\.py)`", section))
    present = {str(path.relative_to(ROOT)) for package in PACKAGES + ("benchmarks", "tests")
               for path in (ROOT / package).rglob("*.py")
               if "__pycache__" not in path.parts and not path.name.startswith("test_")}
    present |= {f"{name}.py" for name in SCRIPTS}
    present -= {path for path in present if path.endswith("__init__.py")
                and path not in named}  # a package's own file need not be named
    assert sorted(present - named) == [], "modules the Layout section does not name"
    assert sorted(named - present) == [], "names in the Layout section that are not files"
