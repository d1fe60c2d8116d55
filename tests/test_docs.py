"""The README and docs/: every relative link resolves, none leaves the repository, and
every Python example runs as written."""

import re
from pathlib import Path

import pytest

from benchmarks.reporting import readme

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
EXAMPLE = re.compile(r"```python\n(.*?)```", re.S)


def links(page: Path) -> list[str]:
    return LINK.findall(page.read_text())


def check_links(page: Path, root: Path = ROOT) -> None:
    for target in links(page):
        assert "://" not in target and not target.startswith("mailto:"), (
            f"{page.name} links outside the repository: {target}")
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(root) and path.exists(), f"{page.name}: {target} is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_stays_in_the_repository_and_resolves(page):
    check_links(page)


def test_the_link_check_can_fail(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    page = root / "page.md"
    (root / "here.md").write_text("")
    (tmp_path / "outside.md").write_text("")  # exists, but not in the repository
    for text, message in (("[b](https://example.org)", "outside the repository"),
                          ("[a](gone.md)", "gone.md is missing"),
                          ("[c](../outside.md)", "outside.md is missing")):
        page.write_text(f"[ok](here.md) and {text}")
        with pytest.raises(AssertionError, match=message):
            check_links(page, root)
    page.write_text("[ok](here.md#a-section)")
    check_links(page, root)


def test_the_readme_opens_with_the_commands_and_the_headline():
    """What groundup is, the two commands and who wins where fit in the first 60 lines,
    and every page of docs/ is one link away."""
    lines = (ROOT / "README.md").read_text().splitlines()
    first = "\n".join(lines[:60])
    assert "make test" in first and "make run" in first and readme.BEGIN in first
    assert "| where " in first and "| fastest " in first
    linked = {target for target in links(ROOT / "README.md")}
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked


@pytest.mark.parametrize("page", [p for p in PAGES if EXAMPLE.search(p.read_text())],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_example_runs_as_written(page, capsys):
    """A page's examples in order, in one namespace, as a reader pastes them."""
    namespace: dict = {"__name__": "__main__"}
    for i, block in enumerate(EXAMPLE.findall(page.read_text())):
        exec(compile(block, f"{page.name}, example {i + 1}", "exec"), namespace)
    assert capsys.readouterr().out  # each example shows its result

