"""The layered house: one-way imports, a light ``import volcnb``, a README that maps every module, small pieces."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "volcnb"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name (``volcnb.tasks`` for ``volcnb/tasks/__init__.py``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere (function bodies included), ``TYPE_CHECKING`` blocks not."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from . import wire` imports a module
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != name}


def test_no_import_cycle_even_counting_function_local_imports() -> None:
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert len(graph) > 30  # the walk saw the package


def test_the_cycle_check_can_fail(tmp_path: pathlib.Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from volcnb import b\n")
    b.write_text("from typing import TYPE_CHECKING\nimport volcnb.a\nif TYPE_CHECKING:\n    import volcnb.c\n")
    known = {"volcnb.a", "volcnb.b", "volcnb.c"}
    assert imports_of("volcnb.a", a, known) == {"volcnb.b"}
    assert imports_of("volcnb.b", b, known) == {"volcnb.a"}


def test_import_volcnb_is_light() -> None:
    heavy = ["starlette", "uvicorn", "matplotlib", "ipywidgets", "multipart", "python_multipart", "volcnb.sim"]
    code = ("import sys, volcnb\n"
            f"print([m for m in {heavy!r} if any(k == m or k.startswith(m + '.') for k in sys.modules)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_lint_imports_contracts_hold() -> None:
    exe = pathlib.Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_readme_lists_every_module() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    missing = [name for name, path in modules().items()
               if f"`{path.relative_to(ROOT).as_posix()}`" not in section]
    assert not missing, f"README's architecture section does not list: {missing}"


def _long_ok(lines: list[str], lineno: int) -> bool:
    """A ``# long: reason`` comment on the definition's line or the line above it."""
    here = lines[lineno - 1]
    above = lines[lineno - 2] if lineno >= 2 else ""
    return bool(re.search(r"#\s*long:\s*\S", here) or re.match(r"\s*#\s*long:\s*\S", above))


def size_problems(path: pathlib.Path) -> list[str]:
    """Modules over 600 lines and functions over 60 lines without a ``# long: reason`` beside them."""
    src = path.read_text(encoding="utf-8")
    lines = src.splitlines()
    problems = []
    if len(lines) > MAX_MODULE_LINES and not any(re.match(r"#\s*long:\s*\S", ln) for ln in lines[:5]):
        problems.append(f"{path.name}: {len(lines)} lines")
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > MAX_FUNCTION_LINES and not _long_ok(lines, node.lineno):
                problems.append(f"{path.name}:{node.lineno} {node.name}() is {n} lines")
    return problems


def test_modules_and_functions_are_small() -> None:
    problems = [p for path in modules().values() for p in size_problems(path)]
    assert not problems, problems


def test_the_size_check_can_fail(tmp_path: pathlib.Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    (tmp_path / "m.py").write_text(f"def big():\n{body}\n")
    assert size_problems(tmp_path / "m.py") == ["m.py:1 big() is 71 lines"]
    (tmp_path / "m.py").write_text(f"def big():  # long: a table\n{body}\n")
    assert size_problems(tmp_path / "m.py") == []


DOCUMENT_AS_SEED = re.compile(r"seeds?[ _-]?0\d\d(?!\d)|\bseeds' (own )?example", re.IGNORECASE)


def _documents_named_as_seeds(paths: list[pathlib.Path]) -> list[str]:
    hits = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if DOCUMENT_AS_SEED.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    return hits


def test_no_text_names_an_api_document_as_a_seed() -> None:
    """Users know the API documents by title (the 同步转异步 document, the 人像保持 document, …): no
    docstring, message, test, notebook or README calls one by a number."""
    files = [ROOT / "README.md", *(ROOT / "benchmarks").glob("*"), *(ROOT / "notebooks").glob("*.ipynb")]
    for folder in ("volcnb", "tests", "scripts"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".txt", ""} and p.is_file()]
    assert _documents_named_as_seeds([p for p in files if p.is_file()]) == []


def test_the_seed_check_can_fail() -> None:
    bad = ROOT / "tests" / "architecture" / "_seed_probe.txt"
    try:
        bad.write_text("as " + "seed" + " 002's example shows\nrandom seed 3 is fine\n", encoding="utf-8")
        hits = _documents_named_as_seeds([bad])
    finally:
        bad.unlink()
    assert len(hits) == 1 and ":1:" in hits[0]
