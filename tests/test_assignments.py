"""The classroom assignments: otter builds them, grades them offline, and nothing secret leaks.

Once per session the fixture ``built`` runs ``otter assign`` on every master notebook (the
function behind ``python3 course.py assign``), builds variant 2 of the first assignment, and
grades, two at a time with ``otter run``:

* each solution notebook, which must get full marks: this is the check that the solutions pass
  every test, hidden ones included, with the reference guard on (so the build itself skips
  otter's own run of the same tests);
* the plausible-mistake suite, :data:`MISTAKES`: wrong submissions a student could plausibly hand
  in. One submission may carry mistakes in several questions when no question depends on
  another's mistaken answer; each mistake must lose points on its own question, and no mistaken
  submission gets full marks;
* variant 2's solution with variant 2's autograder (full marks) and variant 0's solution with it
  (less than full marks, and refused by ``grade(..., variant=2)``).

A student notebook is also run as a student would, alone in an empty folder, to see
``grader.check`` pass on a right answer and fail on a wrong one.
"""

import csv
import importlib.util
import json
import re
import shutil
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
VARIANT_NAME, VARIANT = NAMES[0], 2

_QR = ('    Q, R = jnp.linalg.qr(X.T)  # X^T = Q R, so X^+ r = Q R^{-T} r\n    r = y - X @ theta0\n'
       '    return theta0 + Q @ jax.scipy.linalg.solve_triangular(R, r, trans="T")')
_JAC = "return (1.0 + eps * jnp.cos(X @ theta))[:, None] * X"
_ATTACK = 'pgd(lambda z, t: losses(params, z), X, y, eps, "l2", 5, 2.5 * eps / 5)'
_PLOT1 = 'ax.set_xlabel("iteration t")\nax.set_ylabel("L(θ_t) / L(θ_0)")\nax.legend()'

#: {assignment: [one submission = [(mistake, question, text of the solution, replacement), ...]]}.
#: Mistakes grouped in one submission are in questions that do not use each other's answers.
MISTAKES = {
    "a1_least_squares": [
        [("normal equations in float32", "q1", _QR,
          "    r = y - X @ theta0\n    return theta0 + X.T @ jnp.linalg.solve(X @ X.T, r)"),
         ("transposed Jacobian", "q3", _JAC, f"return ({_JAC.split(' ', 1)[1]}).T"),
         ("off-by-one steps (T - 1)", "q4", "run = linear.gd(X, y, theta0, lr=eta, steps=T)",
          "run = linear.gd(X, y, theta0, lr=eta, steps=T - 1)")],
        [("calls linear.closest_solution", "q1", _QR, "    return linear.closest_solution(X, y, theta0)"),
         ("wrong rate formula (sigma_min only)", "q2", "return float(jnp.max(jnp.abs(1.0 - eta * s**2)))",
          "return float(1.0 - eta * jnp.min(s) ** 2)"),
         ("beta with the Frobenius norm", "q3", "jnp.linalg.svd(X, compute_uv=False)[0]", "jnp.linalg.norm(X)")],
        [("figure without labels or legend", "q4", _PLOT1, "pass"),
         ("the safe step as conclusion", "q6",
          "conclusion = min(candidates, key=lambda k: abs(np.log(candidates[k] / best_eta)))",
          'conclusion = "1/sigma_max^2"'),
         ("Jacobian by autodiff", "q3", _JAC, "return jax.jacfwd(lambda t: X @ t + eps * jnp.sin(X @ t))(theta)")],
    ],
    "a2_one_hidden_layer_ntk": [
        [("forgets 1/sqrt(m)", "q1", "return jax.nn.relu(X @ W.T / jnp.sqrt(d)) @ v / jnp.sqrt(m)",
          "return jax.nn.relu(X @ W.T / jnp.sqrt(d)) @ v"),
         ("|v| instead of v^2 in the W term", "q2", "D1, D2 = (Z1 > 0) * v, (Z2 > 0) * v",
          "D1, D2 = (Z1 > 0) * jnp.sqrt(jnp.abs(v)), (Z2 > 0) * jnp.sqrt(jnp.abs(v))"),
         ("assumes unit-norm inputs", "q3", "c = jnp.clip(G / jnp.outer(norms, norms), -1.0, 1.0)",
          "c = jnp.clip(G, -1.0, 1.0)")],
        [("spread with ddof=0", "q4", "spread = K.std(axis=0, ddof=1).mean(axis=-1)",
          "spread = K.std(axis=0).mean(axis=-1)"),
         ("calls ntk.lambda0", "q3", "return float(jnp.linalg.eigvalsh(H)[0])", "return float(ntk.lambda0(X))"),
         ("conclusion against the data", "q7",
          'conclusion = "moves less when wider" if ratio > 2 else ("moves more when wider" if ratio < 0.5 else "no clear trend")',
          'conclusion = "no clear trend"')],
    ],
    "a3_gram_gauss_newton": [
        [("missing damping", "q1", "u = jnp.linalg.solve(K + damping * jnp.eye(K.shape[0], dtype=K.dtype), r)",
          "u = jnp.linalg.solve(K, r)"),
         ("forgets v in p", "q3", "p = m * (d + 1)", "p = m * d")],
        [("ignores the step size", "q1", "return theta - lr * pullback(u)[0]", "return theta - pullback(u)[0]"),
         ("off-by-one: residuals without t = 0", "q2", "ggn_res, gd_res = np.array(ggn_res), np.array(gd_res)",
          "ggn_res, gd_res = np.array(ggn_res[1:]), np.array(gd_res[1:])"),
         ("GiB instead of GB", "q3", 'gb_gauss_newton = sizes["gauss_newton_bytes"] / 1e9',
          'gb_gauss_newton = sizes["gauss_newton_bytes"] / 2**30'),
         ("damping conclusion against own numbers", "q5",
          'conclusion5 = ("more damping converges more slowly" if q5 > 10 else',
          'conclusion5 = ("no clear effect" if q5 > 10 else')],
        [("calls ntklib.ggn.ggn_step", "q1", "return theta - lr * pullback(u)[0]",
          "from ntklib import ggn\n    ggn.ggn_step(apply_fn, theta, X, y, damping=damping, lr=lr)\n"
          "    return theta - lr * pullback(u)[0]"),
         ("damping never passed to ggn_step", "q5", "theta = ggn_step(mlp, theta, X, y, damping=lam)",
          "theta = ggn_step(mlp, theta, X, y)")],
    ],
    "a4_adversarial_training": [
        [("sphere instead of ball", "q1", "scale = jnp.where(norms > eps, eps / jnp.where(norms > 0, norms, 1.0), 1.0)",
          "scale = eps / jnp.where(norms > 0, norms, 1.0)")],
        [("norm of the whole batch", "q1", "norms = jnp.linalg.norm(delta.reshape(delta.shape[0], -1), axis=1)",
          "norms = jnp.linalg.norm(delta) * jnp.ones(delta.shape[0])")],
        [("PGD descends", "q2", "xk = x + project(xk + step_size * direction - x, eps, norm)",
          "xk = x + project(xk - step_size * direction - x, eps, norm)")],
        [("calls adversarial.project", "q1", "    if norm == \"linf\":\n        return jnp.clip(delta, -eps, eps)",
          "    return adversarial.project(delta, eps=eps, norm=norm)"),
         ("unnormalized l2 direction", "q2", "direction = g / per_example(jnp.where(gn > 0, gn, 1.0))",
          "direction = g"),
         ("FGSM in the l2 ball", "q3",
          'acc["fgsm"].append(accuracy(adversarial.fgsm(loss_with, X_test, y_test, eps=eps, norm="linf",',
          'acc["fgsm"].append(accuracy(adversarial.fgsm(loss_with, X_test, y_test, eps=eps, norm="l2",')],
        [("PGD against the initial weights (outside the loop)", "q6", _ATTACK, _ATTACK.replace("losses(params, z)", "losses(params0, z)")),
         ("clean loss instead of robust loss", "q7", "robust7.append(robust_train_loss(net7, run7.params))",
          "robust7.append(float(run7.clean_loss[-1]))")],
        [("attack with the wrong sign (descends the loss)", "q6", _ATTACK, _ATTACK.replace("losses(params, z)", "-losses(params, z)")),
         ("widest width as the answer", "q7", "enough7 = next((m for m, r in zip(widths7, robust7) if r <= 0.2), None)",
          "enough7 = widths7[-1]")],
    ],
}


def _variant_of(solution: Path, dest: Path, replacements) -> Path:
    nb = nbformat.read(solution, as_version=4)
    for old, new in replacements:
        hits = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert len(hits) == 1, f"{solution.name}: expected the text {old!r} in exactly one cell"
        assert hits[0].source.count(old) == 1, f"{solution.name}: {old!r} occurs twice in its cell"
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
    # the next ones reuse its programs (kernels inherit the environment).
    mp = pytest.MonkeyPatch()
    mp.setenv("JAX_COMPILATION_CACHE_DIR", str(out / "jax_cache"))
    start = time.perf_counter()
    ref = "0123456789abcdef0123456789abcdef01234567"  # a pinned commit (no network is used)
    info = {name: build.build(name, out / name, run_tests=False, quiet=True, ntklib_ref=ref) for name in NAMES}
    info["_variant"] = build.build(VARIANT_NAME, out / f"variant-{VARIANT}" / VARIANT_NAME, variant=VARIANT,
                                   run_tests=False, quiet=True, ntklib_ref=ref)
    build_seconds = time.perf_counter() - start
    jobs = []
    for name in NAMES:
        b = info[name]
        subs = out / f"{name}-submissions"
        subs.mkdir()
        b["submissions"] = {"solution": b["solution"]}
        for k, group in enumerate(MISTAKES[name]):
            b["submissions"][f"mistakes-{k}"] = _variant_of(b["solution"], subs / f"mistakes-{k}.ipynb",
                                                            [(old, new) for _, _, old, new in group])
        b["hidden_points"] = _hidden_points(b["tests"])
        jobs += [(name, kind, b["autograder"], path) for kind, path in b["submissions"].items()]
    v = info["_variant"]
    jobs += [("_variant", "solution", v["autograder"], v["solution"]),
             ("_variant", "variant-0 solution", v["autograder"], info[VARIANT_NAME]["solution"])]
    jobs.sort(key=lambda j: j[1] != "solution")  # solutions first: they fill the compilation cache
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda j: build.grade_one(j[2], j[3]), jobs))
    grade_seconds = time.perf_counter() - start
    for (name, kind, _, _), result in zip(jobs, results):
        info[name].setdefault("grades", {})[kind] = result
    mp.undo()
    info["_build_seconds"], info["_grade_seconds"] = build_seconds, grade_seconds
    return info


@pytest.mark.parametrize("name", NAMES)
def test_solution_gets_full_marks(built, name):
    g = built[name]["grades"]["solution"]
    assert g["possible"] > 0 and g["score"] == g["possible"], g
    assert g["public_passed"], g


MISTAKE_CASES = [(name, k, label, q) for name, groups in MISTAKES.items()
                 for k, group in enumerate(groups) for label, q, _, _ in group]


@pytest.mark.parametrize("name,k,label,question", MISTAKE_CASES, ids=[f"{c[0][:2]}-{c[2]}" for c in MISTAKE_CASES])
def test_each_plausible_mistake_loses_points_on_its_question(built, name, k, label, question):
    g = built[name]["grades"][f"mistakes-{k}"]
    score, max_score = g["questions"][question]
    assert score < max_score, f"{label}: {question} kept full marks ({score}/{max_score}); {g['questions']}"
    assert g["score"] < g["possible"], f"{label}: full marks"


def test_plausible_mistake_suite_is_large_enough():
    for name in NAMES:
        assert sum(len(group) for group in MISTAKES[name]) >= 5, name
        for group in MISTAKES[name]:
            qs = [q for _, q, _, _ in group]
            assert len(set(qs)) == len(qs) or name == "a1_least_squares", name


def test_a_variant_grades_its_own_solution_and_refuses_others(built, tmp_path):
    v = built["_variant"]
    own, other = v["grades"]["solution"], v["grades"]["variant-0 solution"]
    assert own["score"] == own["possible"] > 0 and own["public_passed"], own
    assert other["score"] < other["possible"], f"variant 0's solution must not pass variant {VARIANT}: {other}"
    assert not other["public_passed"], "the public VARIANT check must fail on the other variant's notebook"
    student = nbformat.read(v["student"], as_version=4)
    assert student.metadata["ntk_course"] == {"assignment": VARIANT_NAME, "variant": VARIANT}
    text = "\n".join(c.source for c in student.cells)
    assert f"VARIANT = {VARIANT}" in text and "VARIANT = 0" not in text
    assert "colab.research.google.com/github" not in text, "a variant must not send students to variant 0"
    assert f"variant {VARIANT}" in text
    assert build.submission_variant(built[VARIANT_NAME]["solution"]) == 0
    with pytest.raises(build.WrongVariant, match="variant 0"):
        build.grade_one(v["autograder"], built[VARIANT_NAME]["solution"], variant=VARIANT)


@pytest.mark.parametrize("name", NAMES)
def test_autograder_pins_ntklib_and_needs_no_git(built, name):
    import zipfile

    with zipfile.ZipFile(built[name]["autograder"]) as z:
        env = yaml.safe_load(z.read("environment.yml"))
        setup = z.read("setup.sh").decode()
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "otter-grader[grading,plugins]==7.0.0" in pip
    (ntklib,) = [r for r in pip if r.startswith("ntklib")]
    assert ntklib == ("ntklib @ https://github.com/ntk-course/ntk-course/archive/"
                      "0123456789abcdef0123456789abcdef01234567.tar.gz"), ntklib
    assert "git+" not in " ".join(pip) and "git " not in setup


@pytest.mark.parametrize("name", NAMES)
def test_every_test_is_guarded_and_every_reference_resolves(built, name):
    ns = {}
    exec((build.MASTERS / "refguard.py").read_text(), ns)
    for question, refs in ns["FORBIDDEN"][name].items():
        text = (built[name]["tests"] / f"{question}.py").read_text()
        assert "make_forbid" in text and build.GUARD_MARKER not in text, question
        resolved = [r for r in refs if ns["make_forbid"]  # the same resolution rule as the guard
                    and _resolves(r)]
        assert resolved, f"{name} {question}: none of {refs} exists in this ntklib: update masters/refguard.py"
    assert build.GUARD_MARKER not in build.PUBLISHED.joinpath(f"{name}.ipynb").read_text()


def _resolves(name: str) -> bool:
    import importlib

    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            return True
        except AttributeError:
            return False
    return False


def test_the_guard_blocks_module_and_imported_names():
    ns = {}
    exec((build.MASTERS / "refguard.py").read_text(), ns)
    from ntklib import linear

    forbid = ns["make_forbid"](["ntklib.linear.closest_solution", "ntklib.no_such_module.f"])
    scope = {"closest_solution": linear.closest_solution, "linear": linear}
    exec("def student(): return closest_solution\ndef student2(): return linear.closest_solution(1, 2, 3)", scope)
    original = linear.closest_solution
    with forbid(scope["student"], scope["student2"]):
        with pytest.raises(AssertionError, match="course's reference"):
            scope["student"]()(1, 2, 3)
        with pytest.raises(AssertionError, match="course's reference"):
            scope["student2"]()
    assert linear.closest_solution is original and scope["closest_solution"] is original


def test_grade_writes_a_csv_with_ids_maxima_and_written_columns(built, tmp_path, monkeypatch):
    rows = {str(p): built[n]["grades"][k] for n in NAMES[:1] for k, p in built[n]["submissions"].items()}
    monkeypatch.setattr(build, "grade_one", lambda zip_, sub, variant=None: rows[str(sub)])
    subs = [Path(p) for p in rows]
    out = tmp_path / "grades.csv"
    build.grade(built[NAMES[0]]["autograder"], subs, csv_path=out, jobs=2,
                written=build.written_questions(NAMES[0]))
    table = list(csv.DictReader(out.open()))
    assert [r["submission"] for r in table] == [str(p) for p in subs]
    head = table[0]
    for col in ("student", "variant", "public_tests_passed", "autograded", "autograded_max", "q1", "q1_max",
                "q5_written", "q5_written_max"):
        assert col in head, col
    assert table[0]["student"] == "a1_least_squares" and float(head["q5_written_max"]) == 3


def test_a_failed_build_keeps_the_previous_output(tmp_path, monkeypatch):
    masters = tmp_path / "masters"
    shutil.copytree(build.MASTERS, masters)
    nb = nbformat.read(masters / f"{NAMES[0]}.ipynb", as_version=4)
    solution = next(c for c in nb.cells if c.cell_type == "code" and "# BEGIN SOLUTION" in c.source)
    solution.source = solution.source.replace("# END SOLUTION", "")  # a malformed master
    nbformat.write(nb, masters / f"{NAMES[0]}.ipynb")
    monkeypatch.setattr(build, "MASTERS", masters)
    out = tmp_path / "dist" / NAMES[0]
    out.mkdir(parents=True)
    (out / "previous.txt").write_text("the last good build")
    with pytest.raises(RuntimeError, match="is unchanged"):
        build.build(NAMES[0], out, run_tests=False, quiet=True, ntklib_ref="main")
    assert (out / "previous.txt").read_text() == "the last good build"


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


def test_rubrics_stay_out_of_the_book_and_go_to_the_instructor(built):
    book = "\n".join(p.read_text() for p in (ROOT / "book").glob("*.md"))
    assert "**Rubric" not in book and "Model answer" not in book, "rubrics belong to the masters, not the book"
    for name in NAMES:
        nb = nbformat.read(build.MASTERS / f"{name}.ipynb", as_version=4)
        rubrics = [c.source.split("**Rubric", 1)[1] for c in nb.cells
                   if c.cell_type == "markdown" and "**Rubric" in c.source]
        assert rubrics, f"{name} has a manually graded question with a rubric"
        page = " ".join(built[name]["rubrics"].read_text().split())
        for rubric in rubrics:
            assert " ".join(("**Rubric" + rubric).split()) in page, f"{name}: a rubric is missing from rubrics.md"
        assert len(build.written_questions(name)) >= 1


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
    written = sorted(p.name for p in (tmp_path / f"tests_{name}").iterdir())
    assert written == sorted(p.name for p in built[name]["tests"].glob("*.py")), written
    outputs = {c.source.strip(): json.dumps(c.outputs) for c in nb.cells if c.source.startswith("grader.check")}
    assert "passed" in outputs['grader.check("q1")'] and "failed" not in outputs['grader.check("q1")']
    assert "failed" in outputs['grader.check("q2")']


def test_report_scores_and_grading_times(built, capsys):
    """Prints each assignment's scores, the points each plausible mistake lost, and the times, after
    checking that every submission was graded, with a score in [0, possible] and a time."""
    import math

    assert built["_build_seconds"] > 0
    for name in NAMES + ["_variant"]:
        g = built[name]["grades"]
        want = {"solution", "variant-0 solution"} if name == "_variant" else \
            {"solution", *(f"mistakes-{k}" for k in range(len(MISTAKES[name])))}
        assert set(g) == want, f"{name}: a grading is missing"
        for kind, r in g.items():
            assert r["possible"] > 0 and 0 <= r["score"] <= r["possible"], f"{name} {kind}: {r}"
            assert math.isfinite(r["seconds"]) and r["seconds"] > 0, f"{name} {kind}: no time"
    lines = [f"\nassignments built in {built['_build_seconds']:.0f} s, "
             f"{sum(len(built[n]['grades']) for n in NAMES) + 2} submissions graded in "
             f"{built['_grade_seconds']:.0f} s (two at a time)"]
    for name in NAMES:
        g = built[name]["grades"]
        sol = g["solution"]
        times = ", ".join(f"{g[f'mistakes-{k}']['seconds']:.0f}" for k in range(len(MISTAKES[name])))
        lines.append(f"{name}: solution {sol['score']:g}/{sol['possible']:g} ({sol['seconds']:.0f} s; "
                     f"mistake submissions {times} s)")
        for k, group in enumerate(MISTAKES[name]):
            m = g[f"mistakes-{k}"]
            for label, q, _, _ in group:
                s_, mx = m["questions"][q]
                lines.append(f"  {label:40s} {q}: {s_:g}/{mx:g}   submission {k}: {m['score']:g}/{m['possible']:g}")
    v = built["_variant"]["grades"]
    lines.append(f"variant {VARIANT} of {VARIANT_NAME}: its solution {v['solution']['score']:g}/{v['solution']['possible']:g}, "
                 f"variant 0's solution {v['variant-0 solution']['score']:g}/{v['variant-0 solution']['possible']:g}")
    with capsys.disabled():
        print("\n".join(lines))
    assert all(built[n]["grades"]["solution"]["score"] == built[n]["grades"]["solution"]["possible"] for n in NAMES)
