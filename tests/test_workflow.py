"""The GitHub Actions workflow that publishes the book builds it with the README's command."""

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _readme_command(what: str) -> str:
    """The README's command for ``what`` ("build the rendered book", "run every test")."""
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"^(make \S+)\s+#\s*(.*)$", line.strip())
        if m and m.group(2).startswith(what):
            return m.group(1)
    raise AssertionError(f"the README has no command to {what}")


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def _uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job.get("steps", []) if "uses" in step]


def test_workflow_builds_with_the_readmes_command_and_deploys_pages():
    wf = _workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    build_cmd = _readme_command("build the rendered book")
    builders = [name for name, job in jobs.items() if build_cmd in _runs(job)]
    assert builders, f"no job runs the README's build command {build_cmd!r}"
    build = jobs[builders[0]]
    upload = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")
    )
    assert upload["with"]["path"] == "_build/html"
    assert "refs/heads/main" in upload.get("if", ""), "only main publishes"
    deploy = next(job for job in jobs.values() if "actions/deploy-pages" in _uses(job))
    assert builders[0] in deploy["needs"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert "refs/heads/main" in deploy["if"]


def test_workflow_runs_the_tests_with_debian_chromium_only_where_needed():
    jobs = _workflow()["jobs"]
    test_cmd = _readme_command("run every test")
    for name, job in jobs.items():
        runs = " ".join(_runs(job))
        uses_browser = test_cmd in _runs(job)
        assert ("apt-get install" in runs and "chromium" in runs) == uses_browser, (
            f"job {name}: chromium only in the job that runs {test_cmd!r}"
        )
        if uses_browser or any(r.startswith("make ") for r in _runs(job)):
            assert job.get("container", "").endswith("bookworm"), f"job {name} should run in Debian"
    assert any(test_cmd in _runs(job) for job in jobs.values()), "no job runs the tests"


def test_workflow_uses_pinned_requirements_and_caches_runs_like_the_library():
    from monosem_lib import version

    wf = _workflow()
    text = WORKFLOW.read_text()
    assert "pip install" not in text, (
        "installs go through make, from requirements.txt and constraints.txt"
    )
    assert "cpu" in wf["env"]["PIP_EXTRA_INDEX_URL"], "torch==2.13.0 must resolve to the CPU build"
    for name, job in wf["jobs"].items():
        if not any(r.startswith("make ") for r in _runs(job)):
            continue
        if name == "colab":
            continue  # it runs every chapter as a fresh reader does: no shared run cache
        caches = [s["with"] for s in job["steps"] if s.get("uses", "").startswith("actions/cache@")]
        runs = next((c for c in caches if c["path"] == "_build/monosem-cache"), None)
        assert runs is not None, f"job {name} does not cache _build/monosem-cache"
        key = runs["key"]
        for source in version.RESULT_SOURCES + ("version.py",):  # the code digest and the version
            assert f"monosem_lib/{source}" in key, f"the cache key misses {source}: {key}"
