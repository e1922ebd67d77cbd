"""benchmarks/mutation.py's bookkeeping (mutmut itself is not run here): the work tree's settings and --resume's checks."""
from __future__ import annotations

import pytest

from benchmarks import mutation


def test_a_work_tree_records_its_selection_and_resumes_only_on_unchanged_code(tmp_path):
    work = tmp_path / "mutation-x"
    work.mkdir()
    mutation.copy_tree(work)
    mutation.configure(work, "pipeline/splits.py", ("tests/test_splits.py", "--deselect=tests/test_splits.py::x"))
    assert mutation._setting(work, "only_mutate") == '["pipeline/splits.py"]'
    assert mutation._setting(work, "pytest_add_cli_args_test_selection") == \
        '["tests/test_splits.py", "--deselect=tests/test_splits.py::x"]'
    with pytest.raises(SystemExit, match="not a kept work tree"):  # mutmut never ran there
        mutation.resume_tree(work, "pipeline/splits.py")
    (work / "mutants").mkdir()
    with pytest.raises(SystemExit, match="not a kept work tree of pipeline/metrics.py"):
        mutation.resume_tree(work, "pipeline/metrics.py")
    (work / "tests" / "test_splits.py").write_text("# an older version of the tests\n")
    assert mutation.resume_tree(work, "pipeline/splits.py") == work
    assert (work / "tests" / "test_splits.py").read_bytes() == (mutation.ROOT / "tests/test_splits.py").read_bytes()
    (work / "pipeline" / "splits.py").write_text("# the code as it was\n")
    with pytest.raises(SystemExit, match=r"pipeline/splits.py changed since"):
        mutation.resume_tree(work, "pipeline/splits.py")


def test_a_missing_test_file_of_a_selection_is_named(tmp_path):
    mutation.copy_tree(tmp_path)
    with pytest.raises(SystemExit, match="tests/test_nothing.py missing"):
        mutation.configure(tmp_path, "pipeline/splits.py", ("tests/test_nothing.py", "--deselect=tests/a.py::b"))
