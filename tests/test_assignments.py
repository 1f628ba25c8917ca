"""The classroom assignments: otter builds them, grades them offline, and nothing secret leaks.

Once per session the fixture ``built`` runs ``otter assign`` on every master notebook (the
function behind ``python3 course.py assign``) and grades three submissions of each with
``otter run``, two at a time:

* the solution notebook, which must get full marks: this is the check that the solutions pass
  every test, hidden ones included (so the build itself skips otter's own run of the same tests);
* a wrong submission (the solution with one answer broken), which must score lower;
* a submission that passes only the public tests (the solution with a bug that the visible tests
  cannot see), which must pass every public test and lose exactly the hidden points of the
  broken question.

A student notebook is also run as a student would, alone in an empty folder, to see
``grader.check`` pass on a right answer and fail on a wrong one.
"""

import importlib.util
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("assignments_build", ROOT / "assignments" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NAMES = build.names()

# For each assignment: (question, text of the solution notebook, replacement). WRONG breaks an
# answer outright; PUBLIC_ONLY makes one that the public tests accept and the hidden ones reject.
WRONG = {
    "a1_least_squares": ("q1", 'return theta0 + Q @ jax.scipy.linalg.solve_triangular(R, r, trans="T")',
                         "return jnp.linalg.pinv(X) @ y  # the minimum-norm solution: ignores theta0"),
    "a2_one_hidden_layer_ntk": ("q1", "return jax.nn.relu(X @ W.T / jnp.sqrt(d)) @ v / jnp.sqrt(m)",
                                "return jax.nn.relu(X @ W.T / jnp.sqrt(d)) @ v  # forgets 1/sqrt(m)"),
    "a3_gram_gauss_newton": ("q3", "p = m * (d + 1)", "p = m * d  # forgets v"),
    "a4_adversarial_training": ("q2", "xk = x + project(xk + step_size * direction - x, eps, norm)",
                                "xk = x + project(xk - step_size * direction - x, eps, norm)  # descends"),
}
PUBLIC_ONLY = {
    # eta = 1/sigma_max^2 in the public test: the max is then at sigma_min, not in general
    "a1_least_squares": ("q2", "return float(jnp.max(jnp.abs(1.0 - eta * s**2)))",
                         "return float(1.0 - eta * jnp.min(s) ** 2)"),
    # unit-norm rows in the public test: X X^T is then the matrix of cosines, not in general
    "a2_one_hidden_layer_ntk": ("q3", "c = jnp.clip(G / jnp.outer(norms, norms), -1.0, 1.0)",
                                "c = jnp.clip(G, -1.0, 1.0)"),
    # damping 0 and lr 1 in the public tests
    "a3_gram_gauss_newton": ("q1", "return theta - lr * pullback(u)[0]", "return theta - pullback(u)[0]"),
    # one example in the public test: the norm of the whole batch is then the example's norm
    "a4_adversarial_training": ("q1", "norms = jnp.linalg.norm(delta.reshape(delta.shape[0], -1), axis=1)",
                                "norms = jnp.linalg.norm(delta) * jnp.ones(delta.shape[0])"),
}


def _variant_of(solution: Path, dest: Path, old: str, new: str) -> Path:
    nb = nbformat.read(solution, as_version=4)
    hits = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
    assert len(hits) == 1, f"{solution.name}: expected the text {old!r} in exactly one cell"
    hits[0].source = hits[0].source.replace(old, new)
    nbformat.write(nb, dest)
    return dest


def _hidden_points(tests_dir: Path) -> dict:
    """{question: points of its hidden test cases}, read with otter's own test-file loader."""
    from otter.nbmeta_config import NBMetadataConfig
    from otter.test_files import create_test_file

    out = {}
    for path in sorted(tests_dir.glob("*.py")):
        tf = create_test_file(str(path), NBMetadataConfig())
        out[tf.name] = sum(tc.points for tc in tf.test_cases if tc.hidden)
    return out


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    # A compilation cache of this session only: the first grading of an assignment compiles,
    # the next two reuse its programs (kernels inherit the environment).
    mp = pytest.MonkeyPatch()
    mp.setenv("JAX_COMPILATION_CACHE_DIR", str(out / "jax_cache"))
    start = time.perf_counter()
    info = {name: build.build(name, out / name, run_tests=False, quiet=True) for name in NAMES}
    build_seconds = time.perf_counter() - start
    jobs = []
    for name in NAMES:
        b = info[name]
        subs = out / f"{name}-submissions"
        subs.mkdir()
        b["submissions"] = {
            "solution": b["solution"],
            "wrong": _variant_of(b["solution"], subs / "wrong.ipynb", *WRONG[name][1:]),
            "public_only": _variant_of(b["solution"], subs / "public_only.ipynb", *PUBLIC_ONLY[name][1:]),
        }
        b["hidden_points"] = _hidden_points(b["tests"])
        jobs += [(name, kind, b["autograder"], path) for kind, path in b["submissions"].items()]
    jobs.sort(key=lambda j: j[1] != "solution")  # solutions first: they fill the compilation cache
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda j: build.grade_one(j[2], j[3]), jobs))
    for (name, kind, _, _), result in zip(jobs, results):
        info[name].setdefault("grades", {})[kind] = result
    mp.undo()
    info["_build_seconds"] = build_seconds
    return info


@pytest.mark.parametrize("name", NAMES)
def test_solution_gets_full_marks(built, name):
    g = built[name]["grades"]["solution"]
    assert g["possible"] > 0 and g["score"] == g["possible"], g
    assert g["public_passed"], g


@pytest.mark.parametrize("name", NAMES)
def test_wrong_submission_scores_lower(built, name):
    question = WRONG[name][0]
    g, full = built[name]["grades"]["wrong"], built[name]["grades"]["solution"]
    assert g["score"] < full["score"], g
    assert g["questions"][question][0] == 0.0, f"{question} is broken outright: {g}"


@pytest.mark.parametrize("name", NAMES)
def test_public_only_submission_loses_the_hidden_points(built, name):
    question = PUBLIC_ONLY[name][0]
    g, hidden = built[name]["grades"]["public_only"], built[name]["hidden_points"]
    assert g["public_passed"], f"every public test should pass: {g}"
    score, max_score = g["questions"][question]
    assert hidden[question] > 0 and score == max_score - hidden[question], (question, g, hidden)
    assert g["score"] >= g["possible"] - sum(hidden.values()), "only hidden points may be lost"


@pytest.mark.parametrize("name", NAMES)
def test_committed_student_notebook_is_up_to_date(built, name):
    committed = build.PUBLISHED / f"{name}.ipynb"
    assert committed.exists(), f"run `python3 course.py assign` to write {committed.relative_to(ROOT)}"
    fresh = nbformat.read(built[name]["student"], as_version=4)
    assert nbformat.read(committed, as_version=4) == fresh, (
        f"{committed.relative_to(ROOT)} is out of date with its master: run `python3 course.py assign`")


def _solution_lines(master: Path) -> list[str]:
    """Lines of the master's solutions (code between BEGIN/END SOLUTION, solution markdown cells)
    that appear nowhere else in it: not in a prompt, not in a public test."""
    nb = nbformat.read(master, as_version=4)
    secret, public, in_block = [], [], False
    for cell in nb.cells:
        if cell.cell_type == "raw":
            in_block = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(cell.source.strip(), in_block)
            continue
        if "hidden: true" in cell.source:
            continue
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == "# BEGIN SOLUTION":
                inside = True
            elif line.strip() == "# END SOLUTION":
                inside = False
            elif inside or (in_block and cell.cell_type == "markdown"):
                secret.append(line.strip())
            else:
                public.append(line)
    public_text = "\n".join(public)
    return [line for line in secret if len(line) > 12 and line not in public_text]


@pytest.mark.parametrize("name", NAMES)
def test_student_version_leaks_no_solution_and_no_hidden_test(built, name):
    text = build.PUBLISHED.joinpath(f"{name}.ipynb").read_text()
    nb = nbformat.reads(text, as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    solution = _solution_lines(build.MASTERS / f"{name}.ipynb")
    assert len(solution) >= 5
    leaked = [line for line in solution if line in source]
    assert not leaked, f"solution lines in the student notebook: {leaked[:3]}"
    for marker in ("BEGIN SOLUTION", "Model answer", "Rubric", "hidden=True", "BEGIN TEST CONFIG"):
        assert marker not in text, marker
    hidden_tests = re.findall(r"def (test_\w+)", "\n".join(
        p.read_text().split("hidden=True)", 1)[1] for p in built[name]["tests"].glob("*.py")
        if "hidden=True" in p.read_text()))
    assert hidden_tests and not [t for t in hidden_tests if t in text], "a hidden test leaked"
    # the embedded public tests are otter's public tests, and only those
    public = re.findall(r"def (test_\w+)", source)
    assert public and not set(public) & set(hidden_tests)


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_links_to_this_repository(name):
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url = cfg["url"].rstrip("/")
    slug = url.split("github.com/")[1]
    text = (build.PUBLISHED / f"{name}.ipynb").read_text()
    badge = f"https://colab.research.google.com/github/{slug}/blob/{cfg['branch']}/assignments/student/{name}.ipynb"
    assert badge in text, f"the Colab badge must point to {badge}"
    assert f"git+{url}" in text, "the setup cell must install ntklib from the course's repository"
    nb = nbformat.reads(text, as_version=4)
    setup = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    assert 'if "google.colab" in sys.modules' in setup.source and "remove-cell" in setup.metadata["tags"]
    pip = [line for line in setup.source.splitlines() if "pip install" in line]
    assert any("otter-grader==" in line for line in pip), "students check with the autograder's otter"
    ntklib_lines = [line for line in pip if "ntklib" in line]
    assert ntklib_lines and all("--no-deps" in line for line in ntklib_lines), "never reinstall jax"
    assert not any("jax" in line.replace("ntklib", "") for line in pip)


def test_book_shows_student_versions_only_and_never_executes_them():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "assignments/student/*" in cfg["execute"]["exclude_patterns"], \
        "student notebooks hold `...` placeholders: the book build must not execute them"
    for private in ("assignments/masters/*", "assignments/dist/*"):
        assert private in cfg["exclude_patterns"], f"{private} must never reach the book"
    toc = (ROOT / "_toc.yml").read_text()
    entries = re.findall(r"file:\s*(assignments/\S+)", toc)
    assert sorted(entries) == [f"assignments/student/{n}" for n in NAMES], (
        "the Assignments part of _toc.yml lists exactly the student notebooks")
    assert "book/instructor" in toc and "book/assignments" in toc


def test_rubrics_on_the_instructor_page_match_the_masters():
    page = " ".join((ROOT / "book" / "instructor.md").read_text().split())
    for name in NAMES:
        nb = nbformat.read(build.MASTERS / f"{name}.ipynb", as_version=4)
        rubrics = [c.source.split("**Rubric", 1)[1] for c in nb.cells
                   if c.cell_type == "markdown" and "**Rubric" in c.source]
        assert rubrics, f"{name} has a manually graded question with a rubric"
        for rubric in rubrics:
            assert " ".join(("**Rubric" + rubric).split()) in page, f"{name}: rubric differs from book/instructor.md"


def test_variants_change_the_data_and_every_hidden_test():
    for name in NAMES:
        master = nbformat.read(build.MASTERS / f"{name}.ipynb", as_version=4)
        variant = build.apply_variant(master, 7)
        before = [c.source for c in master.cells]
        after = [c.source for c in variant.cells]
        changed = [a for a, b in zip(after, before) if a != b]
        assert all("VARIANT = 7" in a for a in changed)
        hidden = [a for a in after if "hidden: true" in a]
        assert hidden and all("VARIANT = 7" in a for a in hidden), f"{name}: a hidden test ignores VARIANT"
        assert any("VARIANT = 7" in a and "hidden: true" not in a for a in changed), \
            f"{name}: the experiment's data should depend on VARIANT too"


def test_a_student_notebook_runs_alone_and_checks_right_and_wrong_answers(built, tmp_path):
    """As on Colab: the notebook alone in a folder writes its public tests and grader.check works."""
    from nbclient import NotebookClient

    name = "a1_least_squares"
    nb = nbformat.read(build.PUBLISHED / f"{name}.ipynb", as_version=4)
    answers = {  # q1 right, q2 wrong
        "def closest_solution": "    return theta0 + jnp.linalg.pinv(X) @ (y - X @ theta0)",
        "def gd_rate": "    return 0.5",
    }
    for cell in nb.cells:
        for head, body in answers.items():
            if cell.cell_type == "code" and cell.source.startswith(head):
                cell.source = cell.source.replace("    ...", body)
    cut = next(i for i, c in enumerate(nb.cells) if c.source.strip() == 'grader.check("q2")')
    nb.cells = nb.cells[: cut + 1]
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert sorted(p.name for p in (tmp_path / f"tests_{name}").iterdir()) == ["q1.py", "q2.py", "q3.py", "q4.py"]
    outputs = {c.source.strip(): json.dumps(c.outputs) for c in nb.cells if c.source.startswith("grader.check")}
    assert "passed" in outputs['grader.check("q1")'] and "failed" not in outputs['grader.check("q1")']
    assert "failed" in outputs['grader.check("q2")']


def test_report_scores_and_grading_times(built, capsys):
    """Prints each assignment's scores and otter-run times into the test log, after checking
    that every assignment was graded three times with a score in [0, possible] and a time."""
    assert built["_build_seconds"] > 0
    for name in NAMES:
        g = built[name]["grades"]
        assert set(g) == {"solution", "wrong", "public_only"}, f"{name}: a grading is missing"
        for kind, r in g.items():
            assert r["possible"] > 0 and 0 <= r["score"] <= r["possible"], f"{name} {kind}: {r}"
            assert math.isfinite(r["seconds"]) and r["seconds"] > 0, f"{name} {kind}: no time"
        assert g["solution"]["score"] == g["solution"]["possible"]
    with capsys.disabled():
        print(f"\nassignments built in {built['_build_seconds']:.0f} s (otter assign, tests run by the gradings)")
        print(f"{'assignment':26s} {'solution':>14s} {'wrong':>14s} {'public only':>14s}")
        for name in NAMES:
            g = built[name]["grades"]
            cells = [f"{g[k]['score']:g}/{g[k]['possible']:g} {g[k]['seconds']:4.0f}s"
                     for k in ("solution", "wrong", "public_only")]
            print(f"{name:26s} " + " ".join(f"{c:>14s}" for c in cells))
