"""Mutation testing of the modules whose mistakes change a result: mutmut, module by module, on a fast test selection.

    python -m benchmarks.mutation                                  # every module below, table + json
    python -m benchmarks.mutation --module pipeline/metrics.py     # one (repeatable); others keep their rows
    python -m benchmarks.mutation --module pipeline/head/ --keep /tmp/mm   # keep the work tree for `mutmut show`

Each module runs in a fresh copy of the working tree (tracked and untracked, not ignored files) under a
temporary folder, with `[tool.mutmut]` appended to the copy's pyproject.toml: every file of the module is
mutated, and each mutant runs only the tests of its selection that reach the mutated function (mutmut's own
coverage of test -> function); property tests draw `--examples` cases each. The table (killed / survived /
timeout / no tests / other / not run / total; kill % of the mutants run) is printed and written to
benchmarks/results/mutation.json with every survivor's diff; BENCHMARKS.md says why each cannot change a
result. A module cut short by --timeout keeps the mutants it reached and is marked "not finished".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
# module (a file, or a folder ending in /) -> the tests that check it; each must run in seconds
# 15-20 s each (whole extracts, SIGKILL at random moments): what they cover of the cache the others reach faster
SLOW_END_TO_END = tuple(f"--deselect=tests/{test}" for test in (
    "test_cache_lock.py::test_a_second_extract_on_the_same_cache_is_refused_in_one_line",
    "test_faults.py::test_extract_on_a_full_disk_is_one_line_not_a_crash_and_resumes",
    "test_cache_append.py::test_sigkill_at_any_moment_loses_no_finished_chunk_and_leaves_a_readable_cache",
))
MODULES: dict[str, tuple[str, ...]] = {  # module -> its test selection (files, or pytest options)
    "pipeline/metrics.py": ("tests/test_metrics.py",),
    "pipeline/splits.py": ("tests/test_splits.py",),
    "pipeline/report/tables.py": ("tests/test_report_tables.py", "tests/test_metrics.py"),
    "sgmft_cache/": ("tests/test_cache.py", "tests/test_cache_v2.py", "tests/test_cache_properties.py",
                     "tests/test_cache_records.py", "tests/test_cache_identity.py", "tests/test_cache_append.py",
                     "tests/test_cache_lock.py", "tests/test_faults.py",
                     *SLOW_END_TO_END),
    "pipeline/head/": ("tests/test_head_equations.py", "tests/test_head_model.py", "tests/test_head_wiring.py",
                       "tests/test_head_diagnostics.py", "tests/test_head_masks.py", "tests/test_head_config.py"),
    "pipeline/fit/": ("tests/test_fit_behaviour.py", "tests/test_loop.py", "tests/test_fit_checks.py",
                      "tests/test_sweep_units.py", "tests/test_probe_and_scorers.py", "tests/test_fit_batches.py",
                      "tests/test_fit_records.py", "tests/test_fit_stream.py", "tests/test_sweep.py",
                      "tests/test_rundir_guarantees.py", "tests/test_variants.py", "tests/test_weights_only.py",
                      "tests/test_small_guarantees.py", "tests/test_fit.py", "tests/test_fit_post_shapes.py",
                      "tests/test_predict.py"),
}
STATUS = {1: "killed", 3: "killed", 0: "survived", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", 37: "killed", 5: "no tests", 33: "no tests"}  # mutmut's exit codes (mutmut/stats.py)
COLUMNS = ("killed", "survived", "timeout", "no tests", "other", "not run")  # other: crashed, skipped


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (committed or not, ignored files left out) into `dest`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def configure(work: Path, module: str, tests: tuple[str, ...]) -> None:
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    if "[tool.mutmut]" in text:
        raise SystemExit("pyproject.toml has its own [tool.mutmut]; remove it, benchmarks/mutation.py sets it per module")
    pattern = _only_mutate(module)
    missing = [t for t in tests if not t.startswith("-") and not (work / t).exists()]
    if missing:
        raise SystemExit(f"{module}: test file(s) {', '.join(missing)} missing; fix MODULES in benchmarks/mutation.py")
    pyproject.write_text(text + "\n[tool.mutmut]\n" + "\n".join([
        'source_paths = ["pipeline/", "sgmft_cache/"]',
        f"only_mutate = [{json.dumps(pattern)}]",
        f"pytest_add_cli_args_test_selection = {json.dumps(list(tests))}",
        'pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]',
        'also_copy = ["cli.py", "benchmarks/"]',
    ]) + "\n")


def _only_mutate(module: str) -> str:
    """mutmut's only_mutate pattern of a module: a file, or every file under a folder ending in /."""
    return f"{module}*" if module.endswith("/") else module


def _setting(work: Path, key: str) -> str:
    """A value of the [tool.mutmut] that configure() appended to the work tree's pyproject.toml."""
    text = (work / "pyproject.toml").read_text().split("[tool.mutmut]")[-1]
    return next(line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith(f"{key} ="))


def resume_tree(work: Path, module: str) -> Path:
    """A kept work tree of `module` with the working tree's tests copied in: only tests may have changed (new
    tests in the selection's files), so the verdicts of the mutants it killed still hold."""
    if not (work / "mutants").is_dir() or json.loads(_setting(work, "only_mutate")) != [_only_mutate(module)]:
        raise SystemExit(f"--resume {work}: not a kept work tree of {module} (see --keep)")
    changed = [p for p in sorted((ROOT / module).rglob("*.py") if module.endswith("/") else [ROOT / module])
               if (work / p.relative_to(ROOT)).read_bytes() != p.read_bytes()]
    if changed:
        raise SystemExit(f"--resume {work}: {', '.join(str(p.relative_to(ROOT)) for p in changed)} changed since; "
                         "its mutants are not those of the code now: run the module afresh")
    shutil.copytree(ROOT / "tests", work / "tests", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return work


def collect(work: Path) -> dict[str, int | None]:
    """mutant name -> exit code (None: not run), from mutmut's .meta files."""
    codes: dict[str, int | None] = {}
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        codes.update(json.loads(meta.read_text()).get("exit_code_by_key", {}))
    return codes


DIFFS = """import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
out = {}
for name in json.loads(sys.stdin.read()):
    diff = get_diff_for_mutant(name, path=find_mutant(name).path)
    out[name] = "\\n".join(l for l in diff.splitlines() if l[:1] in "+-" and l[:3] not in ("+++", "---"))
print(json.dumps(out))
"""  # every survivor's diff in one process (`mutmut show` starts one per mutant)


def diffs_of(work: Path, names: list[str], env: dict) -> dict[str, str]:
    if not names:
        return {}
    proc = subprocess.run([sys.executable, "-c", DIFFS], cwd=work, env=env, input=json.dumps(names),
                          capture_output=True, text=True)
    if proc.returncode:
        return {name: f"(diff not read: {proc.stderr.strip().splitlines()[-1:]})" for name in names}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_module(module: str, args: argparse.Namespace) -> dict:
    """Mutate `module`, run its tests against each mutant; its row of the table and its survivors."""
    if args.resume:
        work = resume_tree(Path(args.resume), module)
        names = [name for name, code in collect(work).items()
                 if (code is not None or args.and_not_run) and STATUS.get(code) != "killed"]
    else:
        work = Path(tempfile.mkdtemp(prefix="mutation-", dir=args.keep))
        copy_tree(work)
        configure(work, module, MODULES[module])
        names = []
    tests = tuple(json.loads(_setting(work, "pytest_add_cli_args_test_selection")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "SGMFT_PROPERTY_EXAMPLES": str(args.examples)}  # hypothesis examples per property test, per mutant
    start = time.perf_counter()
    if args.resume and not names:
        raise SystemExit(f"--resume {work}: every mutant it ran was killed; nothing to run again")
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.jobs), *names]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: a timeout ends mutmut's workers too
    try:
        out, _ = proc.communicate(timeout=args.timeout)
        finished, log = proc.returncode == 0, out[-3000:]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        finished, log = False, f"stopped after {args.timeout:.0f} s"
    seconds = time.perf_counter() - start
    codes = collect(work)
    counts = dict.fromkeys(COLUMNS, 0)
    survivors = []
    for name, code in sorted(codes.items()):
        status = STATUS.get(code, "other") if code is not None else "not run"
        counts[status] += 1
        if status not in ("killed", "not run"):
            survivors.append(dict(mutant=name, status=status))
    diffs = diffs_of(work, [s["mutant"] for s in survivors], env)
    for s in survivors:
        s["diff"] = diffs.get(s["mutant"], "")
    total = sum(counts.values())
    tried = total - counts["not run"]  # a run cut short by --timeout: the rate of the mutants it reached
    finished = finished and not counts["not run"]
    row = dict(module=module, tests=list(tests), **counts, total=total, seconds=round(seconds, 1),
               kill_pct=round(100 * counts["killed"] / tried, 1) if tried else None, finished=finished,
               survivors=survivors)
    if not finished or not total:
        row["log"] = log
    if args.resume:
        row["resumed"] = dict(work_dir=str(work), rerun=len(names))  # the mutants not killed before, run again
    if args.keep is None and not args.resume:
        shutil.rmtree(work, ignore_errors=True)
    else:
        row["work_dir"] = str(work)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| module | killed | survived | timeout | no tests | other | not run | total | kill % | seconds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        pct = "—" if r["kill_pct"] is None else f"{r['kill_pct']:.1f}"
        note = "" if r["finished"] else " (not finished)"
        cells = " | ".join(str(r.get(c, 0)) for c in COLUMNS)
        lines.append(f"| `{r['module']}`{note} | {cells} | {r['total']} | {pct} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module", action="append", choices=list(MODULES), help="a module of MODULES (repeatable)")
    p.add_argument("--jobs", type=int, default=2, help="mutants run in parallel (mutmut --max-children)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds one module may run; then it is cut short")
    p.add_argument("--examples", type=int, default=5, help="hypothesis examples per property test and mutant")
    p.add_argument("--keep", help="folder to keep each module's work tree in (for `mutmut show`)")
    p.add_argument("--resume", help="a kept work tree (--keep) of the one --module: copy the tests in and run again "
                   "only the mutants it did not kill (after adding tests to the selection's files)")
    p.add_argument("--and-not-run", action="store_true",
                   help="with --resume: also the mutants a run cut short by --timeout never reached")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.resume and len(args.module or []) != 1:
        p.error("--resume takes exactly one --module")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    by_module = {r["module"]: r for r in saved.get("modules", [])}
    for module in args.module or list(MODULES):
        row = run_module(module, args)
        by_module[module] = row
        print(table([row]).splitlines()[-1], flush=True)
        for s in row["survivors"]:
            print(f"  {s['status']}: {s['mutant']}\n" + "\n".join(f"    {line}" for line in s["diff"].splitlines()))
        rows = [by_module[m] for m in MODULES if m in by_module]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(machine=machine(), modules=rows), indent=1, ensure_ascii=False) + "\n")
    print(table([by_module[m] for m in MODULES if m in by_module]))


def machine() -> dict:
    import mutmut

    return dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(), python=platform.python_version(),
                mutmut=mutmut.__version__, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


if __name__ == "__main__":
    main()
