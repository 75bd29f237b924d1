"""The README a newcomer reads: its first screen says what this is, where it stands and the two commands, with a table
of contents; every reference page is linked; no link is broken; the lists it keeps cannot drift from the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from cli.operations import check_request_file
from rehearsal.scenario import scenarios_table
from tests.support import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
FIRST_SCREEN = 40  # lines
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return {slug(match) for match in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def test_given_the_readme_then_its_first_screen_says_what_it_is_where_it_stands_and_the_two_commands_with_contents():
    first = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])

    assert first.startswith("# Custom-image Batch pools") and "**Status:**" in first and "not yet been deployed" in first
    assert "**Contents:**" in first
    for heading in ("Quickstart", "Teams: a pool request", "Ops: deploy and run", "How it works", "Reference"):
        assert f"(#{slug(heading)})" in first
    assert "./scripts/rehearse " in first and "./scripts/test " in first
    assert "Python 3.11" in first and "Node.js 20" in first and "git" in first and "Chromium" in first


def test_given_the_readme_then_every_reference_page_is_linked_and_every_link_in_readme_and_docs_resolves():
    readme_links = set(LINK.findall(README.read_text()))
    assert {f"docs/{page.name}" for page in DOCS} <= readme_links
    for page in [README, *DOCS]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            assert resolved.exists(), (page.name, target)
            if anchor and resolved.suffix == ".md":
                assert anchor in anchors(resolved), (page.name, target)


def test_given_the_shipped_scenarios_then_the_rehearsal_page_lists_each_with_its_own_description():
    page = (PROJECT_ROOT / "docs" / "rehearsal.md").read_text()
    expected = scenarios_table()

    assert expected in page, "docs/rehearsal.md's scenario table differs from examples/; replace it with:\n" + expected
    assert expected.count("\n| [`") == len(list((PROJECT_ROOT / "examples").glob("*.json")))


def test_given_the_example_request_then_it_is_valid_and_the_test_command_is_the_one_ci_runs():
    assert check_request_file(PROJECT_ROOT / "docs" / "request.json", None).valid
    refresh = check_request_file(PROJECT_ROOT / "docs" / "refresh.json", None)
    assert refresh.valid and refresh.request is not None and type(refresh.request).__name__ == "RefreshRequest"
    assert "./scripts/test" in (PROJECT_ROOT / ".ci" / "run").read_text()
