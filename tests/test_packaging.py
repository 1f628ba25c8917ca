"""The repository's promises: one dependency list, one repository URL, one notebook anatomy."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(map(_norm, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        wanted |= set(map(_norm, extra))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(r) for r in pip if not r.startswith("-e")}
    assert listed == wanted, (
        f"environment.yml and pyproject.toml drifted apart: only in environment.yml: "
        f"{sorted(listed - wanted)}; only in pyproject.toml: {sorted(wanted - listed)}"
    )


def test_runtime_dependencies_have_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        assert ">=" in req and "<" not in req.replace("<=", ""), req


def _repo():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url = cfg["url"].rstrip("/")
    return url, url.split("github.com/")[1], cfg["branch"]


def test_repository_url_is_set_in_one_place():
    url, slug, branch = _repo()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Homepage"] == url
    for nb in NOTEBOOKS:
        text = nb.read_text()
        badge = f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/{nb.name}"
        assert badge in text, f"{nb.name}: Colab badge must point to {badge}"
        assert f"git+{url}" in text, f"{nb.name}: the install cell must install from {url}"
        others = set(re.findall(r"github\.com/([\w.-]+/[\w.-]+)", text)) - {slug}
        assert not others, f"{nb.name} names another repository: {others}"


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc, f"{nb.name} is missing from _toc.yml"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_anatomy(nb):
    cells = json.loads(nb.read_text())["cells"]
    src = ["".join(c["source"]) for c in cells]
    # 1. title and Colab badge
    assert cells[0]["cell_type"] == "markdown" and src[0].startswith("# ")
    assert "colab-badge.svg" in src[0]
    # 2. hidden install cell, Colab only, never reinstalling jax
    install = cells[1]
    assert install["cell_type"] == "code" and 'if "google.colab" in sys.modules' in src[1]
    assert "remove-cell" in install["metadata"].get("tags", [])
    pip_lines = [line for line in src[1].splitlines() if "pip install" in line]
    assert pip_lines and all("--no-deps" in line and "jax" not in line.replace("ntklib", "") for line in pip_lines)
    # 4. a size profile
    assert any("ntklib.profile()" in s for s in src), "sizes must come from ntklib.profile()"
    # 5. verdicts, explorers
    assert sum("verdict(" in s for s in src) >= 1
    assert any(".player(" in s for s in src), "a kernel-free player for the static book"
    for cell, s in zip(cells, src):
        if ".widgets()" in s:
            tags = cell["metadata"].get("tags", [])
            assert {"remove-output", "nbval-ignore-output"} <= set(tags), "live widgets stay out of the book"
    # committed executed, without errors, with figures
    code = [c for c, s in zip(cells, src) if c["cell_type"] == "code" and s.strip()]
    assert all(c["execution_count"] is not None for c in code[1:]), "commit notebooks executed"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert not any(s.rstrip().endswith(";") for c, s in zip(cells, src) if c["cell_type"] == "code"), \
        "write `_ = expr`, not `expr;` (nbval runs cells without history)"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "python3 course.py test" in ci and "python3 course.py test" in readme
    assert "python3 course.py book" in readme
