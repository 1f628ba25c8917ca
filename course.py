#!/usr/bin/env python3
"""One entry point for the course: build the book, run the tests, refresh notebooks.

    python3 course.py book      # make .venv, install, execute the notebooks, write the HTML
    python3 course.py test      # make .venv, install, run every test (what CI runs)
    python3 course.py test --quick   # the unit tests without those marked slow (a few minutes)
    python3 course.py execute [notebooks/01_*.ipynb ...]   # re-execute notebooks in place
    python3 course.py assign [NAME ...] [--variant K]      # build the assignments (otter-grader)
    python3 course.py stress [--seeds 1,2,3] [--no-medium]  # verdicts at other seeds and sizes
    python3 course.py gpu-check [--smoke] [--profile P]    # full profile on the accelerator, table
    python3 course.py assign grade NAME SUBMISSION ...     # grade submissions offline (otter run)

Needs only Python 3.11+ and the package registries. The virtual environment lives in
``.venv`` and is reinstalled only when ``pyproject.toml`` changes.

Notebooks execute in parallel, one per core (``COURSE_JOBS=N`` overrides). ``book`` keeps the
executed notebooks in a jupyter-cache under ``_build/.jupyter_cache``: a notebook is executed again
when its code changes, and every notebook is when anything in ``ntklib/``, ``pyproject.toml``,
``NTKLIB_PROFILE`` or ``JAX_PLATFORMS`` changes (the cache is keyed on both). Each command ends
with the time of each phase.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = "book,test,assign"  # assign: otter-grader, also needed by tests/test_assignments.py
BOOK_PINS = "constraints/book.txt"  # exact versions of the book toolchain (pip -c); see the file
BUILD = ROOT / "_build"
NB_CACHE = BUILD / ".jupyter_cache"  # executed notebooks, read by the book build (execute: cache)
BOOK_CONFIG = BUILD / "_config.course.yml"  # _config.yml with the cache switched on, see cmd_book


def _venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def _run(cmd, **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def _jobs() -> int:
    """How many notebooks (or pytest workers) run at once: one per core, or ``COURSE_JOBS``."""
    if os.environ.get("COURSE_JOBS"):
        return max(1, int(os.environ["COURSE_JOBS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8))


class _Phases:
    """Wall-clock time of each phase of a command, printed as a table at its end."""

    def __init__(self, command: str):
        self.command, self.rows = command, []
        self.start = self.last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.rows.append((name, now - self.last))
        self.last = now

    def report(self) -> None:
        width = max([len(n) for n, _ in self.rows] + [5])
        print(f"\nPhase times of `course.py {self.command}` (wall clock):")
        for name, seconds in self.rows:
            print(f"  {name:{width}s} {seconds:8.1f} s")
        print(f"  {'total':{width}s} {time.perf_counter() - self.start:8.1f} s", flush=True)


def ensure_env() -> Path:
    """Create ``.venv`` and install ntklib with its book, test and assign extras, if needed."""
    if sys.version_info < (3, 11):
        sys.exit(f"course.py needs Python 3.11 or newer, this is {sys.version.split()[0]}.")
    vendor_mathjax()
    py = _venv_python()
    stamp = VENV / ".ntklib-stamp"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()
                          + (ROOT / BOOK_PINS).read_bytes()).hexdigest() + EXTRAS
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    if not py.exists():
        print(f"Creating the virtual environment {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # pip byte-compiles what it installs. Keep it so (no --no-compile, though the install then
    # takes 55 s instead of 30 s): where PYTHONDONTWRITEBYTECODE is set, as on CI machines here,
    # nothing else writes the .pyc files, and every process would compile jax, scipy and
    # matplotlib from source on each import (measured: course.py test took 738 s instead of 543 s).
    rc = _run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "-c", BOOK_PINS, "-e", f".[{EXTRAS}]"])
    if rc:
        sys.exit(f"Installing the course environment failed (pip exit code {rc}).")
    stamp.write_text(want)
    return py


# MathJax for the book, served from its own files so formulas render with no network. Pinned by
# version and by the npm registry's integrity hash of the tarball; fetched once into book/_vendor/
# (ignored by git; _config.yml's html_static_path copies it into the HTML).
MATHJAX = ("3.2.2", "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==")
MATHJAX_PARTS = ("tex-mml-chtml.js", "input/tex/extensions/", "output/chtml/", "a11y/", "ui/")


def vendor_mathjax(dest: Path = ROOT / "book" / "_vendor" / "mathjax") -> Path:
    """Fetch the pinned MathJax 3 (CommonHTML output with its woff fonts) into ``dest``, once."""
    version, integrity = MATHJAX
    stamp = dest / ".version"
    if stamp.exists() and stamp.read_text() == version:
        return dest
    name = f"mathjax-{version}.tgz"
    with tempfile.TemporaryDirectory() as tmp:
        tgz = Path(tmp) / name
        npm = shutil.which("npm")
        print(f"Fetching MathJax {version} for the book from the npm registry ...", flush=True)
        try:
            if npm:
                subprocess.run([npm, "pack", f"mathjax@{version}", "--silent"], cwd=tmp,
                               check=True, stdout=subprocess.DEVNULL)
            else:  # no Node.js: the same tarball, straight from the registry
                url = f"https://registry.npmjs.org/mathjax/-/{name}"
                with urllib.request.urlopen(url, timeout=60) as r:
                    tgz.write_bytes(r.read())
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"Could not fetch MathJax {version} from the npm registry ({e}). The book serves "
                     f"its own copy so that formulas render offline: connect to the registry once "
                     f"and rerun, or unpack npm's mathjax@{version} es5/ folder into {dest}.")
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if digest != integrity:
            sys.exit(f"The MathJax tarball {name} does not match its pinned hash: not using it.")
        shutil.rmtree(dest, ignore_errors=True)
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and any(
                m.name.removeprefix("package/es5/").startswith(part) for part in MATHJAX_PARTS)
                and m.name.startswith("package/es5/")]
            for m in members:
                m.name = m.name.removeprefix("package/es5/")
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
            tar.extractall(dest, members=members, **safe)
    stamp.write_text(version)
    return dest


#: XLA on the CPU splits each program's LLVM code generation over threads. The course's
#: commands run two or three JAX processes on every core already, so those threads only add
#: overhead: one split compiles about 10% faster (measured on 2 cores: unit tests of ntk and
#: ggn 75 s -> 66 s, three notebooks 87 s -> 82 s). It changes no number: the strict nbval
#: comparison of every committed output passes with it. (LLVM's -O1 would be faster still, but
#: it changes round-off: notebook 04 printed 5e-07 for 2e-07.)
XLA_COMPILE_FLAGS = "--xla_cpu_parallel_codegen_split_count=1"


def _env(profile: str | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if "xla_cpu_parallel_codegen_split_count" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_COMPILE_FLAGS}".strip()
    env["NTKLIB_HEADLESS"] = "1"  # explorers skip live widget drawing (see ntklib/explore.py)
    if profile:
        env["NTKLIB_PROFILE"] = profile
    return env


def cmd_book(args) -> int:
    """usage: course.py book [--all] [JUPYTER-BOOK OPTIONS ...]

    Execute the notebooks that need it, in parallel, into the cache; then write the HTML.

    The HTML build reads every notebook's outputs from the cache (``execute_notebooks: cache``
    in a copy of ``_config.yml``, ``_build/_config.course.yml``), so it executes nothing itself
    unless a notebook is missing from the cache. ``_config.yml`` itself keeps ``force``: a bare
    ``jupyter-book build .`` knows nothing of the ntklib key and must not reuse stale outputs.
    """
    phases = _Phases("book")
    rc = 1
    try:
        py = ensure_env()
        phases.done("environment")
        env = _env()
        summary = BUILD / ".course-prepare.json"
        rc = _run([py, ROOT / "course.py", "_prepare-book", summary], env=env)
        phases.done("execute notebooks")
        if rc:
            print("\nExecuting the notebooks failed (the log above says which and why); "
                  "the HTML was not written.")
            return rc
        info = json.loads(summary.read_text())
        fresh = ["--all"] if info["fresh"] and "--all" not in args else []  # see _prepare_book
        jb = py.parent / ("jupyter-book.exe" if os.name == "nt" else "jupyter-book")
        rc = _run([jb, "build", ".", "--config", BOOK_CONFIG, "-W", "-n", "--keep-going",
                   *fresh, *args], env=env)
        phases.done("write the HTML (jupyter-book, -W)")
        index = BUILD / "html" / "index.html"
        if rc == 0:
            print(f"\nThe book is built. Open it in a browser:\n  {index.as_uri()}")
        else:
            print(f"\nThe book build failed (exit code {rc}); the log above says why.")
        return rc
    finally:
        phases.report()


def _cache_key(root: Path = ROOT, environ=os.environ) -> str:
    """Hash of what a notebook's outputs depend on besides its own code (which jupyter-cache
    hashes): every file of ``ntklib/``, ``pyproject.toml`` (the installed versions) and the
    variables that choose the sizes and the device."""
    h = hashlib.sha256()
    files = sorted(p for p in (root / "ntklib").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*files, root / "pyproject.toml"]:
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for var in ("NTKLIB_PROFILE", "JAX_PLATFORMS"):
        h.update(f"{var}={environ.get(var, '')}\0".encode())
    return h.hexdigest()


def _book_notebooks(execute_cfg: dict) -> list[Path]:
    """The notebooks the book executes: .ipynb entries of _toc.yml minus execute.exclude_patterns."""
    import fnmatch

    import yaml

    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    excluded = execute_cfg.get("exclude_patterns") or []
    out = []
    for name in files:
        path = ROOT / (name if name.endswith(".ipynb") else name + ".ipynb")
        rel = path.relative_to(ROOT).as_posix()
        if path.exists() and not any(fnmatch.fnmatch(rel, pat) for pat in excluded):
            out.append(path)
    return out


def _execute_into_cache(uri: str, timeout: int, allow_errors: bool):
    """Execute one notebook of the cache's project and cache it (runs in a worker process)."""
    from jupyter_cache import get_cache
    from jupyter_cache.cache.db import NbProjectRecord
    from jupyter_cache.executors.utils import create_cache_bundle, single_nb_execution

    cache = get_cache(str(NB_CACHE))
    project_nb = cache.get_project_notebook(uri)
    # The same call, with the same working directory, as myst-nb's own cache mode.
    result = single_nb_execution(project_nb.nb, cwd=str(Path(uri).parent), timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True)
    if result.err is not None:
        NbProjectRecord.set_traceback(uri, result.exc_string, cache.db)
        return uri, result.time, result.exc_string
    bundle = create_cache_bundle(project_nb, result.cwd, None, result.time, result.exc_string)
    cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
    return uri, result.time, None


def _prepare_book(argv: list[str]) -> int:
    """Internal (``course.py _prepare-book SUMMARY``, run by the venv's Python): write the book's
    config, key the cache on ntklib, execute the notebooks the cache lacks, in parallel.

    When the key changes (or there is no cache) the cache is emptied and every notebook executes;
    SUMMARY then says ``fresh`` and cmd_book rebuilds every page (``--all``), since Sphinx would
    otherwise re-read only the notebooks whose files changed and keep the old outputs of the rest.
    """
    import multiprocessing
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    import yaml
    from jupyter_cache import get_cache

    summary = Path(argv[0])
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    execute = cfg.setdefault("execute", {})
    timeout, allow_errors = int(execute.get("timeout", 30)), bool(execute.get("allow_errors", False))
    execute["execute_notebooks"] = "cache"
    execute["cache"] = str(NB_CACHE)
    # The copy lives in _build/: point the book's local Sphinx extension (book/_ext) home.
    sphinx = cfg.get("sphinx", {})
    sphinx["local_extensions"] = {k: str(ROOT / v) for k, v in (sphinx.get("local_extensions") or {}).items()}
    BUILD.mkdir(exist_ok=True)
    text = yaml.safe_dump(cfg, sort_keys=False)
    if not BOOK_CONFIG.exists() or BOOK_CONFIG.read_text() != text:  # same file: Sphinx stays warm
        BOOK_CONFIG.write_text(text)

    key, stamp = _cache_key(), NB_CACHE / "course-key.txt"
    fresh = not (stamp.exists() and stamp.read_text() == key)
    if fresh and NB_CACHE.exists():
        print("ntklib, pyproject.toml or the profile changed: every notebook executes again.")
        shutil.rmtree(NB_CACHE)
    NB_CACHE.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(NB_CACHE))
    stamp.write_text(key)
    notebooks = _book_notebooks(execute)
    for nb in notebooks:
        cache.add_nb_to_project(str(nb))
    cache.change_cache_limit(max(50, 3 * len(notebooks)))  # old versions go, oldest first
    todo = [r.uri for r in cache.list_unexecuted(filter_uris=[str(nb) for nb in notebooks])]
    failed = []
    if todo:
        jobs = min(_jobs(), len(todo))
        print(f"Executing {len(todo)} of {len(notebooks)} notebooks, {jobs} at a time "
              f"({len(notebooks) - len(todo)} unchanged, from the cache) ...", flush=True)
        context = multiprocessing.get_context("spawn")  # no SQLite connection crosses a fork
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(_execute_into_cache, uri, timeout, allow_errors) for uri in todo]
            for future in futures:
                uri, seconds, error = future.result()
                name = Path(uri).relative_to(ROOT)
                print(f"  {name}: {'FAILED' if error else 'executed'} in {seconds:.0f} s", flush=True)
                if error:
                    failed.append(str(name))
                    print(error[-6000:], flush=True)
    else:
        print(f"All {len(notebooks)} notebooks are unchanged: their outputs come from the cache.")
    summary.write_text(json.dumps({"fresh": fresh, "executed": todo, "failed": failed}))
    return 1 if failed else 0


def _pytest_args(args: list[str]) -> list[str]:
    """Run on every core (pytest-xdist) unless the caller chose: `-n 0` runs in one process."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in args):
        return []
    # loadscope keeps each notebook's cells in one worker, in order (nbval needs one kernel per
    # notebook), and each test module with its module- and session-scoped fixtures in one.
    return ["-n", str(_jobs()), "--dist", "loadscope"]


def cmd_test(args) -> int:
    """usage: course.py test [--quick] [PYTEST ARGS ...]

    Every test, as CI runs it: the unit tests, strict nbval on the committed notebooks, the
    assignments and the book build, on every core (pytest-xdist); then the unit tests again with
    ``JAX_ENABLE_X64=1`` (float64), in a second process beside the first. ``--quick``: the unit
    tests only, without those marked slow (no x64 pass). ``--no-x64`` skips the x64 pass.
    PYTEST ARGS (files, ``-k``, ``-n``) go to the main pytest run.
    """
    quick = "--quick" in args
    x64 = not quick and "--no-x64" not in args
    args = [a for a in args if a not in ("--quick", "--no-x64")]
    phases = _Phases("test --quick" if quick else "test")
    rc = 1
    try:
        py = ensure_env()
        phases.done("environment")
        env = _env(profile="small")
        env["JAX_PLATFORMS"] = "cpu"  # no GPU-probe warnings in outputs; notebooks were executed on CPU
        if quick:  # unit tests only: no notebooks, no book build, no assignment grading
            cmd = [py, "-m", "pytest", "-m", "not slow", *_pytest_args(args), *(args or ["tests"])]
        else:
            cmd = [py, "-m", "pytest", "--nbval", "--nbval-sanitize-with", "tests/sanitize.cfg",
                   "--nbval-cell-timeout", "600", *_pytest_args(args), *args]
        x64_run = _start_x64_pass(py, env) if x64 else None
        rc = _run(cmd, env=env)
        phases.done("pytest" + (" -m 'not slow' tests" if quick else " (per-part times above)"))
        if rc == 5:
            print("No test was collected: that is a failure, not a pass.")
            rc = 1
        if x64_run is not None:
            rc64 = _finish_x64_pass(*x64_run)
            phases.done("x64 pass (beside pytest; the wait after it ended)")
            rc = rc or rc64
        return rc
    finally:
        phases.report()


X64_LOG = BUILD / "test-x64.log"


def _start_x64_pass(py, env: dict):
    """Start the unit tests (not slow) with ``JAX_ENABLE_X64=1`` in one process beside the main
    pytest run: float64 everywhere must pass too. Tests that the main pass already runs in
    float64 are left out (``NTKLIB_X64_PASS``, tests/conftest.py)."""
    BUILD.mkdir(exist_ok=True)
    env64 = dict(env, JAX_ENABLE_X64="1", NTKLIB_X64_PASS="1")  # the second: see tests/conftest.py
    cmd = [str(py), "-m", "pytest", "-m", "not slow", "-p", "no:xdist", "-p", "no:cacheprovider",
           "-q", "--durations=15", "tests"]
    print("+ JAX_ENABLE_X64=1", " ".join(cmd[1:]), f"> {X64_LOG.relative_to(ROOT)}  (beside the main run)",
          flush=True)
    log = open(X64_LOG, "w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env64, stdout=log, stderr=subprocess.STDOUT), log


def _finish_x64_pass(proc, log) -> int:
    rc = proc.wait()
    log.close()
    lines = X64_LOG.read_text().splitlines()
    print(f"\nx64 pass (JAX_ENABLE_X64=1, unit tests not slow): {'passed' if rc == 0 else 'FAILED'}; "
          f"its log is {X64_LOG.relative_to(ROOT)}. Its last lines:")
    print("\n".join("  " + line for line in lines[-(40 if rc else 4):]), flush=True)
    return 1 if rc == 5 else rc


def cmd_execute(args) -> int:
    """usage: course.py execute [notebooks/X.ipynb ...]

    Re-execute notebooks in place (all of them by default), small profile, on the CPU, one per
    core; the outputs are what strict nbval then compares.
    """
    phases = _Phases("execute")
    rc = 1
    try:
        py = ensure_env()
        phases.done("environment")
        env = _env(profile="small")
        env["JAX_PLATFORMS"] = "cpu"
        notebooks = args or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))

        def one(nb):
            start = time.perf_counter()
            code = _run([py, "-m", "jupyter", "execute", "--inplace", "--timeout=600", nb], env=env)
            return code, time.perf_counter() - start

        with ThreadPoolExecutor(max_workers=_jobs()) as pool:  # each notebook in its own kernel
            results = list(pool.map(one, notebooks))
        phases.done(f"execute {len(notebooks)} notebooks, {_jobs()} at a time")
        for nb, (code, seconds) in zip(notebooks, results):
            print(f"  {nb}: {'FAILED' if code else 'ok'} in {seconds:.0f} s")
        rc = max(code for code, _ in results) if results else 0
        return rc
    finally:
        phases.report()


# --------------------------------------------------------------------------------------------
# Runs of copies of the notebooks: other profiles, seed offsets, smoke runs, the GPU check
# --------------------------------------------------------------------------------------------

RUNS = BUILD / "runs"  # executed copies; the committed notebooks are never touched by these runs

# Appended to each copy: the run's peak device memory (GPU/TPU; None on the CPU) and its largest
# live array at the end, printed as one JSON line that _run_copies reads back.
_PROBE = """import json as _j, jax as _jax
_arrs = _jax.live_arrays()
_big = max(_arrs, key=lambda a: a.nbytes, default=None)
_stats = _jax.devices()[0].memory_stats() or {}
print("COURSE_PROBE " + _j.dumps({"backend": _jax.default_backend(),
    "peak_device_bytes": _stats.get("peak_bytes_in_use"),
    "largest_array": None if _big is None else [list(_big.shape), str(_big.dtype), _big.nbytes]}))
"""

_RSS = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
        "print('COURSE_PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.exit(rc)")


def _verdict_lines(nb: dict) -> list[str]:
    import re
    pat = re.compile(r"^([AB]\d[\w.\-]*) (PASS|FAIL|SMOKE-FAIL)\b")
    out = []
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            text = o.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            out += [line for line in text.splitlines() if pat.match(line)]
    return out


def _run_copies(label: str, notebooks: list[str], *, profile: str, seed: int = 0,
                smoke: bool = False, cpu: bool = True, x64: bool = False) -> list[dict]:
    """Execute copies of `notebooks` under _build/runs/<label>/ and return one row per notebook."""
    import shutil
    py = ensure_env()
    env = _env(profile=profile)
    env["NTKLIB_SEED"] = str(seed)
    env["NTKLIB_SMOKE"] = "1" if smoke else "0"
    env["NTKLIB_VERDICT_REPORT"] = "1"  # a failed verdict prints and the run goes on: see them all
    if cpu:
        env["JAX_PLATFORMS"] = "cpu"
    if x64:
        env["JAX_ENABLE_X64"] = "1"
    out_dir = RUNS / label
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    copies = []
    for nb in notebooks:
        data = json.loads((ROOT / nb).read_text())
        data["cells"].append({"cell_type": "code", "execution_count": None, "id": "course-probe",
                              "metadata": {}, "outputs": [], "source": _PROBE})
        copy = out_dir / Path(nb).name
        copy.write_text(json.dumps(data))
        copies.append(copy)

    def one(copy):
        start = time.perf_counter()
        proc = subprocess.run([str(py), "-c", _RSS, str(py), "-m", "jupyter", "execute", "--inplace",
                               "--timeout=1200", str(copy)], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        rss = next((int(line.split()[1]) for line in proc.stdout.splitlines()
                    if line.startswith("COURSE_PEAK_RSS_KB")), 0)
        data = json.loads(copy.read_text())
        probe = {}
        for o in data["cells"][-1].get("outputs", []):
            for line in "".join(o.get("text", "")).splitlines():
                if line.startswith("COURSE_PROBE "):
                    probe = json.loads(line[len("COURSE_PROBE "):])
        verdicts = _verdict_lines(data)
        failed = [v.split()[0] for v in verdicts if " FAIL" in v or "SMOKE-FAIL" in v]
        error = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]
        import re
        raised = re.search(r"\b([AB]\d[\w.\-]*) FAIL: .*", re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr))
        if raised:  # a claim that raised stops the notebook: its line is in stderr, not the outputs
            failed.append(raised.group(1))
            verdicts.append(raised.group(0))
            error = raised.group(0)
        return {"notebook": copy.name, "rc": proc.returncode, "seconds": seconds,
                "peak_rss_gib": rss / 2**20, "probe": probe, "verdicts": len(verdicts),
                "failed": failed, "error": error}

    with ThreadPoolExecutor(max_workers=_jobs()) as pool:
        rows = list(pool.map(one, copies))
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=1))
    return rows


def _print_rows(label: str, rows: list[dict]) -> None:
    print(f"\n{label}:")
    print(f"  {'notebook':34s} {'ok':>3s} {'time s':>7s} {'peak RSS GiB':>12s} {'peak dev GiB':>12s} "
          f"{'largest array':>24s}  verdicts")
    for r in rows:
        p = r["probe"]
        dev = p.get("peak_device_bytes")
        big = p.get("largest_array")
        big_s = f"{big[0]} {big[1]}" if big else "-"
        v = f"{r['verdicts'] - len(r['failed'])}/{r['verdicts']} pass"
        if r["failed"]:
            v += " (failed: " + ", ".join(r["failed"]) + ")"
        if r["rc"]:
            v += f"  ERROR: {r['error']}"
        print(f"  {r['notebook']:34s} {'yes' if r['rc'] == 0 else 'NO':>3s} {r['seconds']:7.0f} "
              f"{r['peak_rss_gib']:12.2f} {('-' if dev is None else f'{dev / 2**30:.2f}'):>12s} "
              f"{big_s:>24s}  {v}")


def _notebook_args(args: list[str]) -> list[str]:
    return [a for a in args if a.endswith(".ipynb")] or sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))


def _option(args: list[str], name: str, default=None):
    if name in args:
        i = args.index(name)
        if i + 1 >= len(args):
            sys.exit(f"{name} needs a value.")
        return args[i + 1]
    return default


def cmd_stress(args) -> int:
    """usage: course.py stress [notebooks/X.ipynb ...] [--seeds 1,2,3] [--no-medium] [--x64]

    Every verdict at three other seed offsets (small profile) and at the medium profile.
    ``--x64`` runs them with ``JAX_ENABLE_X64=1`` (float64 everywhere).

    Runs copies under _build/runs/ (the committed notebooks are untouched) and prints a table
    per run. Takes about 4 x the small profile plus the medium one: not part of CI.
    """
    phases = _Phases("stress")
    try:
        notebooks = _notebook_args(args)
        seeds = [int(s) for s in _option(args, "--seeds", "1,2,3").split(",")]
        x64 = "--x64" in args
        tag, note = ("-x64", ", JAX_ENABLE_X64=1") if x64 else ("", "")
        bad = 0
        for seed in seeds:
            rows = _run_copies(f"small-seed{seed}{tag}", notebooks, profile="small", seed=seed, x64=x64)
            _print_rows(f"small profile, NTKLIB_SEED={seed}{note}", rows)
            bad += sum(bool(r["rc"] or r["failed"]) for r in rows)
            phases.done(f"small profile, seed offset {seed}{note}")
        if "--no-medium" not in args:
            rows = _run_copies(f"medium{tag}", notebooks, profile="medium", x64=x64)
            _print_rows(f"medium profile{note}", rows)
            bad += sum(bool(r["rc"] or r["failed"]) for r in rows)
            phases.done("medium profile")
        print(f"\n{bad} notebook run(s) with a failed verdict or an error.")
        return 1 if bad else 0
    finally:
        phases.report()


def cmd_gpu_check(args) -> int:
    """usage: course.py gpu-check [notebooks/X.ipynb ...] [--smoke] [--profile P]

    Every notebook in the full profile on whatever accelerator JAX sees, with a table.

    ``--smoke`` keeps the full profile's shapes but cuts the iteration counts (NTKLIB_SMOKE=1):
    on a CPU it checks the full profile's code paths and memory in minutes.
    """
    phases = _Phases("gpu-check")
    try:
        smoke = "--smoke" in args
        profile = _option(args, "--profile", "full")
        label = f"{profile}{'-smoke' if smoke else ''}"
        rows = _run_copies(label, _notebook_args(args), profile=profile, smoke=smoke, cpu=False)
        _print_rows(f"profile {profile}{', smoke run (verdicts reported, not raised)' if smoke else ''}",
                    rows)
        phases.done(f"{len(rows)} notebooks")
        errors = sum(bool(r["rc"]) for r in rows)
        failed = sum(bool(r["failed"]) for r in rows)
        print(f"\n{errors} notebook(s) raised; {failed} with failed verdicts"
              f"{' (expected in a smoke run: iterations are cut)' if smoke else ''}.")
        return 1 if errors or (failed and not smoke) else 0
    finally:
        phases.report()

def cmd_assign(args) -> int:
    """usage: course.py assign [NAME ...] [--variant K]  |  course.py assign grade NAME SUBMISSION ...

    Build every assignment's student and autograder versions, or grade submissions offline
    (see assignments/build.py).
    """
    py = ensure_env()
    return _run([py, ROOT / "assignments" / "build.py", *args], env=_env())


COMMANDS = {"book": cmd_book, "test": cmd_test, "execute": cmd_execute, "assign": cmd_assign,
            "stress": cmd_stress, "gpu-check": cmd_gpu_check}


def main(argv: list[str]) -> int:
    if argv[:1] == ["_prepare-book"]:  # internal, run by cmd_book with the venv's Python
        return _prepare_book(argv[1:])
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(argv) < 1 or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    if any(a in ("-h", "--help") for a in argv[1:]):  # before any work: no run starts on --help
        print(_usage(argv[0]))
        return 0
    return COMMANDS[argv[0]](argv[1:])


def _usage(command: str) -> str:
    """The usage of one subcommand: its function's docstring, dedented."""
    import inspect
    return inspect.cleandoc(COMMANDS[command].__doc__ or f"usage: course.py {command}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
