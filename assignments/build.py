#!/usr/bin/env python3
"""Build, publish and grade the course's otter-grader assignments.

    python3 course.py assign                      # build every assignment, refresh the student copies
    python3 course.py assign a1_least_squares     # build one
    python3 course.py assign --variant 3          # a variant: other seeds in the data and hidden tests
    python3 course.py assign grade a1_least_squares subs/*.ipynb   # grade offline, write a CSV
    python3 course.py assign grade a1_least_squares subs/*.ipynb --variant 3 -j 2
    python3 course.py assign --ntklib-ref v0.1.0  # pin the autograder's ntklib to a tag or commit

``course.py assign`` runs this file inside the course's ``.venv``. Building an assignment runs
``otter assign`` on its master notebook ``assignments/masters/<name>.ipynb``, which writes

* ``assignments/dist/<name>/student/``: the student notebook, with no solutions and no hidden test;
* ``assignments/dist/<name>/autograder/``: the solution notebook, every test (public and hidden)
  and ``<name>-autograder_<time>.zip``, the file that ``otter run`` (and Gradescope) grades with.

``otter assign`` fails unless the solutions pass every test, hidden ones included. This script then
writes the public tests into the student notebook's setup cell (otter's Colab mode needs the tests
as files, and a notebook opened from GitHub on Colab arrives alone), gives the cells stable ids,
and copies the result to ``assignments/student/<name>.ipynb``: the committed copy that Colab opens
and the book shows (``tests/test_assignments.py`` checks that it is up to date). A variant
(``--variant K``) rewrites every ``VARIANT = 0`` line of the master (the experiment's data and the
seeds of the hidden tests) to ``VARIANT = K`` and builds into ``assignments/dist/variant-K/``; it
never touches the committed copies; its notebooks carry the variant number in their metadata
(``ntk_course.variant``) and in their ``VARIANT`` cell, and no main-branch badge.

Three more things happen on the way. Every test's line ``from refguard import forbid`` is replaced
by an inlined guard with the references of ``masters/refguard.py``'s table for its question, so a
student function that calls the course's reference fails its tests. The autograder's ``ntklib``
requirement is pinned to a commit or tag (``--ntklib-ref``, default the repository's ``HEAD``) as a
GitHub archive URL, which pip installs without ``git``. The model answers and rubrics of the
written questions are written to ``autograder/rubrics.md``, for the instructor only. A build writes
into a temporary folder and replaces ``dist/<name>/`` only when it succeeds.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MASTERS = HERE / "masters"
PUBLISHED = HERE / "student"
DIST = HERE / "dist"

#: The line of the master's setup cell that this script replaces by the public tests.
PUBLIC_TESTS_MARKER = "PUBLIC_TESTS = {}  # filled in by assignments/build.py"
_VARIANT_LINE = re.compile(r"^([ \t]*)VARIANT = \d+", re.MULTILINE)
#: The line of a test cell that this script replaces by the inlined reference guard.
GUARD_MARKER = "from refguard import forbid  # replaced by assignments/build.py"
#: The repository whose archive the autograder installs ntklib from.
REPO_URL = "https://github.com/ntk-course/ntk-course"
_UNPINNED = f"ntklib @ git+{REPO_URL}"
_BADGE_LINE = re.compile(r"^\[!\[Open In Colab\].*\n\n?", re.MULTILINE)
#: Where the committed notebook sends a student on Colab; a variant says this instead.
COLAB_BADGE_TEXT = "Click the badge above"


def _refguard():
    spec_path = MASTERS / "refguard.py"
    namespace: dict = {}
    exec(compile(spec_path.read_text(), str(spec_path), "exec"), namespace)
    tree = ast.parse(spec_path.read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "make_forbid"]
    return namespace["FORBIDDEN"], ast.get_source_segment(spec_path.read_text(), node)


def inline_guards(nb, name: str):
    """Replace every test's ``from refguard import forbid`` line by the inlined guard of its question."""
    table, source = _refguard()
    for cell in nb.cells:
        if cell.cell_type != "code" or GUARD_MARKER not in cell.source:
            continue
        q = re.search(r"def test_(q\d+)", cell.source)
        if q is None:
            raise ValueError(f"inline_guards: a cell of {name} uses forbid outside a test_qN function")
        refs = table.get(name, {}).get(q.group(1))
        if not refs:
            raise ValueError(f"inline_guards: masters/refguard.py lists no reference for {name} {q.group(1)}")
        indent = re.search(r"^([ \t]*)" + re.escape(GUARD_MARKER), cell.source, re.MULTILINE).group(1)
        line = (f"{indent}_guard = {{}}; exec({source!r}, _guard)  # the reference guard of masters/refguard.py\n"
                f"{indent}forbid = _guard['make_forbid']({refs!r})")
        cell.source = cell.source.replace(indent + GUARD_MARKER, line)
    return nb


def default_ntklib_ref() -> str:
    """The commit the autograder installs ntklib at: the repository's HEAD (``git rev-parse``)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit("No git checkout to pin ntklib to: pass --ntklib-ref TAG_OR_COMMIT.") from None


def pin_ntklib(nb, ref: str):
    """Pin the ``ntklib`` requirement of the ASSIGNMENT CONFIG cell to ``ref`` (a tag or commit)."""
    if not re.fullmatch(r"[\w.\-/]+", ref):
        raise ValueError(f"pin_ntklib: {ref!r} is not a tag, branch or commit name")
    pinned = f"ntklib @ {REPO_URL}/archive/{ref}.tar.gz"
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "raw" and "# ASSIGNMENT CONFIG" in cell.source and _UNPINNED in cell.source:
            cell.source = cell.source.replace(_UNPINNED, pinned)
            hits += 1
    if hits != 1:
        raise ValueError(f"pin_ntklib: the ASSIGNMENT CONFIG cell has no requirement {_UNPINNED!r}")
    return nb


def mark_variant(nb, name: str, variant: int):
    """Variant number in the metadata; for a variant, no badge to the published (variant-0) copy."""
    nb.metadata["ntk_course"] = {"assignment": name, "variant": int(variant)}
    if variant:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _BADGE_LINE.sub("", cell.source)
                cell.source = cell.source.replace(
                    COLAB_BADGE_TEXT,
                    f"This is **variant {int(variant)}**: open the file your instructor gave you "
                    "(on Colab: *File → Upload notebook*), not the published copy, whose data differ")
    return nb


def rubrics_markdown(nb, name: str) -> str:
    """The written questions of a master with their model answers and rubrics, for the instructor."""
    out, question, in_solution = [f"# Rubrics: {name}\n"], None, False
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and text.startswith("# BEGIN QUESTION"):
            cfg = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
            question = cfg if cfg.get("manual", "").strip() == "true" else None
        elif cell.cell_type == "raw" and text in ("# BEGIN SOLUTION", "# END SOLUTION"):
            in_solution = text == "# BEGIN SOLUTION"
        elif question is not None and cell.cell_type == "markdown":
            if in_solution:
                out.append(text + "\n")
            else:
                out.append(f"## {question['name'].strip()} ({question['points'].strip()} points, by hand)\n\n{text}\n")
    return "\n".join(out)


def submission_variant(path: Path) -> int | None:
    """The variant a submitted notebook belongs to: its metadata, else its ``VARIANT = K`` line."""
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("ntk_course", {})
    if "variant" in meta:
        return int(meta["variant"])
    for cell in nb.cells:
        if cell.cell_type == "code":
            m = _VARIANT_LINE.search(cell.source)
            if m:
                return int(cell.source[m.start():].split("=", 1)[1].split()[0])
    return None


def student_id(path: Path) -> str:
    """``ntk_course.student`` of the notebook's metadata if set, else the file name's stem."""
    try:
        sid = nbformat.read(path, as_version=4).metadata.get("ntk_course", {}).get("student")
    except Exception:  # an unreadable file is graded (and fails) like any other
        sid = None
    return str(sid) if sid else Path(path).stem


def written_questions(name: str) -> dict:
    """{question: points} of the master's manually graded questions."""
    nb = nbformat.read(MASTERS / f"{name}.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and text.startswith("# BEGIN QUESTION"):
            cfg = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
            if cfg.get("manual", "").strip() == "true":
                out[cfg["name"].strip()] = float(cfg["points"])
    return out


def names() -> list[str]:
    """The assignments, one per master notebook, in order."""
    return sorted(p.stem for p in MASTERS.glob("*.ipynb"))


def apply_variant(nb, variant: int):
    """Rewrite every ``VARIANT = <int>`` line of every code cell to ``VARIANT = variant``."""
    nb = nbformat.from_dict(nb)
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, k = _VARIANT_LINE.subn(rf"\g<1>VARIANT = {int(variant)}", cell.source)
            count += k
    if count == 0:
        raise ValueError("apply_variant: the master has no `VARIANT = 0` line to rewrite; "
                         "add one to the data cell and to each hidden test that draws random inputs.")
    return nb


def public_tests_literal(tests_dir: Path) -> str:
    """A Python dict literal ``{"q1.py": r'''...''', ...}`` of the test files in ``tests_dir``."""
    lines = ["PUBLIC_TESTS = {  # written by assignments/build.py from otter's public tests"]
    for path in sorted(tests_dir.glob("*.py")):
        src = path.read_text()
        if "'''" in src:
            raise ValueError(f"public_tests_literal: {path.name} contains ''' and cannot be embedded; "
                             "use double quotes in the test.")
        lines.append(f"    {path.name!r}: r'''{src}''',")
    lines.append("}")
    return "\n".join(lines)


def fill_public_tests(nb, tests_dir: Path):
    """Put the public tests of ``tests_dir`` into the notebook's setup cell."""
    literal = public_tests_literal(tests_dir)
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and PUBLIC_TESTS_MARKER in cell.source:
            cell.source = cell.source.replace(PUBLIC_TESTS_MARKER, literal)
            hits += 1
    if hits != 1:
        raise ValueError(f"fill_public_tests: expected one setup cell with the line "
                         f"{PUBLIC_TESTS_MARKER!r}, found {hits}.")
    return nb


def normalize(nb):
    """Stable cell ids and no outputs, so a rebuild of an unchanged master is byte-identical."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


#: Environment of the kernels that otter starts: CPU JAX, and a persistent compilation cache so
#: that the build and every later grading of the same assignment compile each function once.
KERNEL_ENV = {
    "JAX_PLATFORMS": "cpu",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "JAX_COMPILATION_CACHE_DIR": str(ROOT / ".jax_cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


def _otter_env() -> dict:
    env = dict(os.environ)
    for key, value in KERNEL_ENV.items():
        env.setdefault(key, value)
    return env


def build(name: str, out: Path, *, variant: int = 0, run_tests: bool = True, quiet: bool = False,
          ntklib_ref: str | None = None) -> dict:
    """Run ``otter assign`` on one master and finish its student notebook.

    With ``run_tests`` (the default) otter grades the solution notebook against every test,
    hidden ones included, and the build fails unless all pass. ``run_tests=False`` skips that
    run, for callers that grade the solution notebook themselves (``tests/test_assignments.py``).
    The output goes to a temporary folder first: a failed build leaves ``out`` as it was.

    Returns a dict with the paths ``student`` (notebook), ``solution`` (the autograder
    notebook), ``autograder`` (the zip), ``tests`` (the directory of all tests) and ``rubrics``.
    """
    master = MASTERS / f"{name}.ipynb"
    if not master.exists():
        raise SystemExit(f"No master notebook {master}; the assignments are: {', '.join(names())}.")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ref = ntklib_ref or default_ntklib_ref()
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        nb = nbformat.read(master, as_version=4)
        if variant:
            nb = apply_variant(nb, variant)
        nb = mark_variant(pin_ntklib(inline_guards(nb, name), ref), name, variant)
        src = Path(tmp) / "master" / master.name
        src.parent.mkdir()
        nbformat.write(nb, src)
        staged = Path(tmp) / "out"
        flags = ["--no-pdfs"] + ([] if run_tests else ["--no-run-tests"])
        proc = subprocess.run([sys.executable, "-m", "otter", "assign", *flags, str(src), str(staged)],
                              cwd=ROOT, env=_otter_env(), capture_output=True, text=True)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 or "Traceback" in log:
            raise RuntimeError(f"otter assign failed on {master.name} (exit code {proc.returncode}): a "
                               f"solution fails a test, or the master is malformed; {out} is unchanged."
                               f"\n{log[-6000:]}")
        student_tests = staged / "student" / "tests"
        for kind in ("student", "autograder"):
            path = staged / kind / f"{name}.ipynb"
            nb_out = fill_public_tests(nbformat.read(path, as_version=4), student_tests)
            nb_out.metadata["ntk_course"] = {"assignment": name, "variant": int(variant)}
            nbformat.write(normalize(nb_out), path)
        # The student notebook writes its public tests itself; one copy of them is enough.
        shutil.rmtree(student_tests)
        (staged / "autograder" / "rubrics.md").write_text(rubrics_markdown(nb, name))
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staged), str(out))
    if not quiet:
        print(f"built {name}{f' (variant {variant})' if variant else ''}: {out}", flush=True)
    (zip_path,) = sorted((out / "autograder").glob(f"{name}-autograder_*.zip"))
    return {"student": out / "student" / f"{name}.ipynb",
            "solution": out / "autograder" / f"{name}.ipynb",
            "autograder": zip_path,
            "tests": out / "autograder" / "tests",
            "rubrics": out / "autograder" / "rubrics.md"}


def publish(name: str, student_notebook: Path) -> Path:
    """Copy a built student notebook to ``assignments/student/`` (what Colab and the book use)."""
    PUBLISHED.mkdir(exist_ok=True)
    dest = PUBLISHED / f"{name}.ipynb"
    shutil.copyfile(student_notebook, dest)
    return dest


class WrongVariant(ValueError):
    """A submission of another variant than the autograder's."""


def grade_one(autograder_zip: Path, submission: Path, *, variant: int | None = None) -> dict:
    """Grade one submission offline with ``otter run`` (no Docker) in a fresh process.

    With ``variant`` given, a submission whose notebook belongs to another variant is refused
    (:class:`WrongVariant`) before it runs. Returns ``student``, ``score`` and ``possible``
    (autograded points; manually graded questions are not included), ``questions``
    (``{name: (score, max_score)}``), ``public_passed`` (whether every public test passed),
    ``variant`` and ``seconds`` (wall time of the grading).
    """
    submission = Path(submission)
    found = submission_variant(submission)
    if variant is not None and found != variant:
        raise WrongVariant(f"{submission} is variant {found}, but it is graded with the autograder of "
                           f"variant {variant}: grade it with --variant {found}, or ask the student for "
                           f"the notebook of variant {variant}.")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "otter", "run", "--no-logo",
                               "-a", str(Path(autograder_zip).resolve()), "-o", tmp,
                               str(submission.resolve())],
                              cwd=tmp, env=_otter_env(), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        results = Path(tmp) / "results.json"
        if proc.returncode != 0 or not results.exists():
            raise RuntimeError(f"otter run failed on {submission} (exit code {proc.returncode}).\n"
                               f"{(proc.stdout + proc.stderr)[-6000:]}")
        tests = json.loads(results.read_text())["tests"]
    questions = {t["name"]: (float(t["score"]), float(t["max_score"])) for t in tests if "max_score" in t}
    public = [t for t in tests if t["name"] == "Public Tests"]
    return {"submission": str(submission),
            "student": student_id(submission),
            "variant": found,
            "score": sum(s for s, _ in questions.values()),
            "possible": sum(m for _, m in questions.values()),
            "questions": questions,
            "public_passed": bool(public) and all(t.get("status") == "passed" for t in public),
            "outputs": {t["name"]: t.get("output", "") for t in tests},
            "seconds": seconds}


def grade(autograder_zip: Path, submissions: list[Path], *, csv_path: Path | None = None,
          jobs: int = 1, variant: int | None = None, written: dict | None = None) -> list[dict]:
    """Grade submissions with :func:`grade_one`, ``jobs`` at a time; write a CSV if asked.

    The CSV has one row per submission: ``student`` (from the notebook's metadata
    ``ntk_course.student``, else the file name), ``submission``, ``variant``,
    ``public_tests_passed``, ``autograded`` and ``autograded_max``, then ``<q>`` and ``<q>_max``
    for each autograded question, then an empty ``<q>_written`` column (with ``<q>_written_max``)
    for each question graded by hand from ``autograder/rubrics.md``. A submission that cannot be
    graded (wrong variant, notebook that does not run) gets a row with its error and no score.
    """
    def one(sub):
        try:
            return grade_one(autograder_zip, sub, variant=variant)
        except (WrongVariant, RuntimeError) as err:
            return {"submission": str(sub), "student": student_id(sub), "error": str(err).splitlines()[0],
                    "questions": {}, "score": "", "possible": "", "public_passed": "", "variant": "",
                    "seconds": 0.0}

    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        rows = list(pool.map(one, submissions))
    if csv_path is not None:
        written = written or {}
        qnames = sorted({q for row in rows for q in row["questions"]}, key=lambda q: (len(q), q))
        maxima = {q: m for row in rows for q, (_, m) in row["questions"].items()}
        header = ["student", "submission", "variant", "public_tests_passed", "autograded", "autograded_max"]
        header += [c for q in qnames for c in (q, f"{q}_max")]
        header += [c for q in written for c in (f"{q}_written", f"{q}_written_max")]
        header += ["error"]
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in rows:
                cells = [row["student"], row["submission"], row["variant"], row["public_passed"],
                         row["score"], row["possible"]]
                for q in qnames:
                    cells += [row["questions"].get(q, ("", ""))[0], maxima[q]]
                for q, points in written.items():
                    cells += ["", points]
                cells.append(row.get("error", ""))
                writer.writerow(cells)
    return rows


def dist_dir(name: str, variant: int = 0) -> Path:
    """Where the build of ``name`` (variant ``variant``) goes."""
    return DIST / f"variant-{variant}" / name if variant else DIST / name


def _latest_zip(name: str, variant: int = 0) -> Path:
    zips = sorted((dist_dir(name, variant) / "autograder").glob(f"{name}-autograder_*.zip"))
    if not zips:
        flag = f" --variant {variant}" if variant else ""
        raise SystemExit(f"No autograder for {name}{flag}: run `python3 course.py assign {name}{flag}` first.")
    return zips[-1]


def main(argv: list[str]) -> int:
    for key, value in KERNEL_ENV.items():  # inherited by the kernels of otter run
        os.environ.setdefault(key, value)
    if argv[:1] == ["grade"]:
        ap = argparse.ArgumentParser(prog="course.py assign grade",
                                     description="Grade submissions offline with otter run.")
        ap.add_argument("name", choices=names())
        ap.add_argument("submissions", nargs="+", type=Path)
        ap.add_argument("--variant", type=int, default=0,
                        help="grade with variant K's autograder; submissions of another variant are refused")
        ap.add_argument("-j", "--jobs", type=int, default=1, help="grade N submissions at a time")
        ap.add_argument("--csv", type=Path, default=None,
                        help="where to write the scores (default <dist>/grades-<date>-<time>.csv)")
        args = ap.parse_args(argv[1:])
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        csv_path = args.csv or dist_dir(args.name, args.variant) / f"grades-{stamp}.csv"
        rows = grade(_latest_zip(args.name, args.variant), args.submissions, csv_path=csv_path,
                     jobs=args.jobs, variant=args.variant, written=written_questions(args.name))
        for row in rows:
            if "error" in row:
                print(f"NOT GRADED  {row['submission']}: {row['error']}")
            else:
                print(f"{row['score']:g} / {row['possible']:g}  {row['student']}  ({row['seconds']:.0f} s)")
        print(f"Scores written to {csv_path}; fill in the *_written columns from "
              f"{dist_dir(args.name, args.variant) / 'autograder' / 'rubrics.md'}")
        return 1 if any("error" in row for row in rows) else 0
    ap = argparse.ArgumentParser(prog="course.py assign",
                                 description="Build the student and autograder versions of the assignments.")
    ap.add_argument("names", nargs="*", help=f"assignments to build (default all: {', '.join(names())})")
    ap.add_argument("--variant", type=int, default=0,
                    help="build variant K (other seeds) into assignments/dist/variant-K/")
    ap.add_argument("--ntklib-ref", default=None,
                    help="tag or commit of this repository that the autograder installs ntklib from "
                         "(default: git HEAD; it must be pushed before Gradescope can install it)")
    args = ap.parse_args(argv)
    ref = args.ntklib_ref or default_ntklib_ref()
    for name in args.names or names():
        built = build(name, dist_dir(name, args.variant), variant=args.variant, ntklib_ref=ref)
        print(f"  autograder:      {built['autograder'].relative_to(ROOT)} (ntklib at {ref})")
        print(f"  rubrics:         {built['rubrics'].relative_to(ROOT)} (instructors only)")
        if not args.variant:
            dest = publish(name, built["student"])
            print(f"  student version: {dest.relative_to(ROOT)} (committed: Colab and the book use it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
