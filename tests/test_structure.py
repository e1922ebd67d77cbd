"""How the code is put together: one owner per concept, stages that talk through their public API, no import
cycles, start-up that pays only for what a command uses."""
from __future__ import annotations

import ast
import re
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("extract", "fit", "head", "report", "predict", "demo")
SOURCES = sorted([*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "sgmft_cache").rglob("*.py"), ROOT / "cli.py"])


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement, TYPE_CHECKING blocks and function bodies included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pipeline" and parts[1] in STAGES else None


@pytest.mark.parametrize("package", [f"pipeline.{s}" for s in STAGES] + ["sgmft_cache"])
def test_every_public_name_is_what_it_says_not_a_submodule(package):
    mod = importlib.import_module(package)
    for name in mod.__all__:
        importlib.import_module(package)
        value = getattr(mod, name)
        assert not isinstance(value, types.ModuleType), f"{package}.{name} is shadowed by a submodule"


def test_stages_use_each_other_only_through_their_public_api():
    wrong = []
    for path in SOURCES:
        here = stage_of(module_name(path))
        for module, names in imports(path):
            there = stage_of(module)
            if there is None or there == here:
                continue
            public = importlib.import_module(f"pipeline.{there}").__all__
            if module != f"pipeline.{there}" or set(names) - set(public):
                wrong.append(f"{path.relative_to(ROOT)}: from {module} import {', '.join(names)}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_not_even_for_type_hints():
    ours = {module_name(p): p for p in SOURCES}
    graph = {m: set() for m in ours}
    for mod, path in ours.items():
        for target, names in imports(path):
            candidates = [target] + [f"{target}.{n}" for n in names]
            graph[mod] |= {c for c in candidates if c in ours and c != mod and not ours[c].name == "__init__.py"}
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(" -> ".join(stack[stack.index(node):] + [node]))
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, "\n".join(cycles)


def string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings}


def owners_of(text: str) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in SOURCES if text in string_literals(p)]


def test_run_directory_file_names_are_spelled_in_one_module():
    from pipeline import rundir

    for name in (rundir.CONFIG, rundir.METRICS, rundir.EPOCHS, rundir.CHECKPOINT, rundir.PROBE_WEIGHTS,
                 rundir.C_SEARCH, rundir.PREDICTIONS, rundir.TEST_OUTPUTS, rundir.GUIDANCE):
        assert owners_of(name) == ["pipeline/rundir.py"], name


def test_cache_attribute_keys_are_spelled_in_one_module():
    """The provenance keys live in sgmft_cache/provenance.py; nobody reads a cache's raw attributes by name.
    ("precision", "weights" and "preprocessing" are also ordinary words elsewhere: metrics, config fields, the
    fingerprint's hashed payload, so only their raw-attribute use is checked.)"""
    from sgmft_cache import provenance

    for key in set(provenance.KEYS) - {"precision", "weights", "preprocessing"}:
        assert owners_of(key) == ["sgmft_cache/provenance.py"], key
    raw = [str(p.relative_to(ROOT)) for p in SOURCES if p.parent.name != "sgmft_cache"
           and re.search(r"\.extra\b|\.attrs\b", p.read_text())]
    assert raw == []


def test_defaults_live_in_one_module():
    from sgmft_cache import DEFAULT_CACHE, DEFAULT_CHUNK_ROWS

    assert owners_of(DEFAULT_CACHE) == ["sgmft_cache/defaults.py"]
    users = [p for p in SOURCES if re.search(rf"(?<![<>=!])= {DEFAULT_CHUNK_ROWS}\b", p.read_text())]
    assert [str(p.relative_to(ROOT)) for p in users] == ["sgmft_cache/defaults.py"]


def test_cli_defaults_and_help_are_the_configs():
    from typer.main import get_command

    import cli
    from pipeline.extract import ExtractConfig
    from pipeline.fit import FitConfig
    from pipeline.predict import PredictConfig
    from pipeline.settings import help_of

    command = get_command(cli.app)
    for name, cfg_class in (("extract", ExtractConfig), ("fit", FitConfig), ("predict", PredictConfig)):
        for param in command.commands[name].params:
            if param.name in {f for f in cfg_class.__dataclass_fields__} and param.name not in ("variant", "run", "data"):
                assert param.default == getattr(cfg_class, param.name), (name, param.name)
                assert param.help == help_of(cfg_class, param.name), (name, param.name)


def python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout


def test_the_cli_starts_without_torch_and_a_head_fit_without_scikit_learn(tmp_path):
    heavy = python("import sys, cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', "
                   "'cn_clip', 'matplotlib', 'h5py', 'pandas'}))")
    assert heavy.strip() == "[]"
    code = (f"import sys; from pipeline.synthetic import make_synthetic_cache; "
            f"make_synthetic_cache({str(tmp_path / 'c.h5')!r}, sizes={{'train': 56, 'test': 14}}, dim=8); "
            f"from pipeline.fit import FitConfig, fit; "
            f"fit(FitConfig(cache={str(tmp_path / 'c.h5')!r}, variant='clip-only', epochs=1, heads=2, ffn_hidden=8, "
            f"out={str(tmp_path / 'run')!r}, quiet=True)); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {{'sklearn', 'matplotlib', 'cn_clip'}}))")
    assert python(code).strip().splitlines()[-1] == "[]"
