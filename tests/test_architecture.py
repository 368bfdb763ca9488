"""The import rules of docs/ARCHITECTURE.md, checked on the source with `ast` (no module is imported).

Rooms: the core (the framegram file, io, encoders, extraction, cache, batch and their helpers), the
shared fMRI layer (`fmri`), the generators (`datasets`), the consumers (keyframes, search, brain,
video_models, vae) and the application (cli, demo, __main__). bench/ is a workshop outside the
package: it imports framegram, never the reverse.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "framegram"
BENCH = ROOT / "bench"

CORE = {"framegram", "io", "encoders", "extract", "batch", "ray_engine", "cache", "align", "errors", "paths", "progress", "plotting",
        "media", "report", "training"}
SHARED = {"fmri"}
DATASETS = {"datasets"}
CONSUMERS = {"keyframes", "search", "brain", "connectome", "video_models", "vae", "vid2vid"}
APPLICATION = {"cli", "demo", "serve", "__main__", "__init__"}

#: the one import across rooms the rules do not allow, kept on purpose: the real-footage scan of
#: `datasets/footage.py` asks the shot detector (at loose settings) as a second opinion beside
#: PySceneDetect where a clip is known to be edited; replacing it would change which stretches the
#: shot and action benchmarks are cut from
ALLOWED = {("framegram.datasets.footage", "framegram.keyframes.shots")}


@dataclass(frozen=True)
class Import:
    module: str  #: the importing module, dotted
    target: str  #: the imported module, dotted (for `from a import b`: a.b if that is a module, else a)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def imports_of(path: Path) -> list[Import]:
    """Every import of the file, at module level or inside functions, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append(Import(name, full if is_module(full) else base, node.lineno))
    return out


def room(dotted: str) -> str | None:
    """The room of a framegram module (None outside the package)."""
    parts = dotted.split(".")
    if parts[0] != "framegram":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


SOURCES = sorted(PACKAGE.rglob("*.py"))
ALL_IMPORTS = [i for p in SOURCES for i in imports_of(p)]


def violations(allowed_targets) -> list[str]:
    """Imports from a room to a framegram room that `allowed_targets(from_room)` does not list."""
    out = []
    for i in ALL_IMPORTS:
        a, b = room(i.module), room(i.target)
        if b is None or a == b or (i.module, i.target) in ALLOWED:
            continue
        if b not in allowed_targets(a):
            out.append(f"{i.module}:{i.line} imports {i.target}")
    return out


def test_the_source_is_read():
    assert len(SOURCES) > 50 and any(i.target.startswith("framegram.") for i in ALL_IMPORTS)
    assert {room(module_name(p)) for p in SOURCES} <= CORE | SHARED | DATASETS | CONSUMERS | APPLICATION, (
        "a new room: give it a place in the rules")


def test_the_core_imports_no_consumer_dataset_or_application():
    assert violations(lambda a: CORE if a in CORE else CORE | SHARED | DATASETS | CONSUMERS | APPLICATION) == []


def test_consumers_do_not_import_each_other():
    def allowed(a):
        return CORE | SHARED | DATASETS if a in CONSUMERS else CORE | SHARED | DATASETS | CONSUMERS | APPLICATION

    assert violations(allowed) == []


def test_the_fmri_layer_and_the_generators_import_only_the_core():
    def allowed(a):
        if a in SHARED:
            return CORE
        if a in DATASETS:
            return CORE | DATASETS
        return CORE | SHARED | DATASETS | CONSUMERS | APPLICATION

    assert violations(allowed) == []


def test_nothing_in_the_package_imports_the_benchmark_workshop():
    workshop = {p.stem for p in BENCH.glob("*.py")} | {"bench"}
    bad = [f"{i.module}:{i.line} imports {i.target}" for i in ALL_IMPORTS if i.target.split(".")[0] in workshop]
    assert bad == []


def test_no_module_reads_a_path_beside_its_source_outside_the_package():
    """`Path(__file__)` climbing out of src/framegram (to bench/results, say) breaks a wheel install."""
    bad = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            climbed = _levels_above_file(node)
            if climbed is not None and not (path.parent / ("../" * climbed)).resolve().is_relative_to(PACKAGE):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} climbs {climbed} folders above its file")
    assert bad == []


def _levels_above_file(node: ast.AST) -> int | None:
    """For `Path(__file__)[.resolve()].parent...` or `.parents[N]`: how many folders above the
    file's own it reaches (0: its folder); None for anything else."""
    levels = 0
    while True:
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            levels, node = levels + 1, node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            if not isinstance(node.slice, ast.Constant):
                return None
            levels, node = levels + node.slice.value + 1, node.value.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute"):
            node = node.func.value
        else:
            break
    if levels and isinstance(node, ast.Call) and any(isinstance(a, ast.Name) and a.id == "__file__" for a in node.args):
        return levels - 1
    return None


@pytest.mark.parametrize("source, climbed", [
    ("Path(__file__).resolve().parents[3] / 'bench'", 3),
    ("Path(__file__).parent / 'data'", 0),
    ("Path(__file__).parent.parent", 1),
    ("Path('x').parent", None),
])
def test_the_path_check_reads_what_it_should(source, climbed):
    expression = ast.parse(source, mode="eval").body
    node = expression.left if isinstance(expression, ast.BinOp) else expression
    assert _levels_above_file(node) == climbed
