#!/usr/bin/env python3
"""One entry point for the course: build the book, run the tests, refresh notebooks.

    python3 course.py book      # make .venv, install, execute every notebook, write the HTML
    python3 course.py test      # make .venv, install, run every test (what CI runs)
    python3 course.py execute [notebooks/01_*.ipynb ...]   # re-execute notebooks in place
    python3 course.py assign [NAME ...] [--variant K]      # build the assignments (otter-grader)
    python3 course.py assign grade NAME SUBMISSION ...     # grade submissions offline (otter run)

Needs only Python 3.11+ and the package registries. The virtual environment lives in
``.venv`` and is reinstalled only when ``pyproject.toml`` changes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = "book,test,assign"  # assign: otter-grader, also needed by tests/test_assignments.py
BOOK_PINS = "constraints/book.txt"  # exact versions of the book toolchain (pip -c); see the file


def _venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def _run(cmd, **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


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


def _env(profile: str | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env["NTKLIB_HEADLESS"] = "1"  # explorers skip live widget drawing (see ntklib/explore.py)
    if profile:
        env["NTKLIB_PROFILE"] = profile
    return env


def cmd_book(args) -> int:
    py = ensure_env()
    jb = py.parent / ("jupyter-book.exe" if os.name == "nt" else "jupyter-book")
    rc = _run([jb, "build", ".", "-W", "-n", "--keep-going", *args], env=_env())
    index = ROOT / "_build" / "html" / "index.html"
    if rc == 0:
        print(f"\nThe book is built. Open it in a browser:\n  {index.as_uri()}")
    else:
        print(f"\nThe book build failed (exit code {rc}); the log above says why.")
    return rc


def cmd_test(args) -> int:
    py = ensure_env()
    env = _env(profile="small")
    env["JAX_PLATFORMS"] = "cpu"  # no GPU-probe warnings in outputs; notebooks were executed on CPU
    rc = _run([py, "-m", "pytest", "--nbval", "--nbval-sanitize-with", "tests/sanitize.cfg",
               "--nbval-cell-timeout", "600", *args], env=env)
    if rc == 5:
        print("No test was collected: that is a failure, not a pass.")
        return 1
    return rc


def cmd_execute(args) -> int:
    py = ensure_env()
    env = _env(profile="small")
    env["JAX_PLATFORMS"] = "cpu"
    notebooks = args or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))
    rc = 0
    for nb in notebooks:
        rc |= _run([py, "-m", "jupyter", "execute", "--inplace", "--timeout=600", nb], env=env)
    return rc


def cmd_assign(args) -> int:
    """Build every assignment's student and autograder versions (see assignments/build.py)."""
    py = ensure_env()
    return _run([py, ROOT / "assignments" / "build.py", *args], env=_env())


COMMANDS = {"book": cmd_book, "test": cmd_test, "execute": cmd_execute, "assign": cmd_assign}


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
