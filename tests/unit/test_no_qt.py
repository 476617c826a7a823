import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "denoiser"


def test_engine_source_never_imports_qt():
    offenders = []
    for f in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{f.name}: {n}" for n in names if n.split(".")[0] in {"PySide6", "PyQt5", "PyQt6", "superqt", "qtpy", "gui"}]
    assert not offenders


def test_importing_the_whole_engine_loads_no_qt():
    code = (
        "import sys, pkgutil, importlib, denoiser\n"
        "for m in pkgutil.walk_packages(denoiser.__path__, 'denoiser.'):\n"
        "    if m.name != 'denoiser.__main__': importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'superqt')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ENGINE.parent)
