"""The documentation: a short README, and no dead relative link in it or under docs/."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
MAX_README_LINES = 250
# [text](target) and ![alt](target); a target is cut at whitespace (an optional "title").
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def documents() -> list[str]:
    docs = os.path.join(ROOT, "docs")
    return [README] + sorted(os.path.join(docs, name) for name in os.listdir(docs)
                             if name.endswith(".md"))


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)  # No headings in code blocks.
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def dead_links(path: str) -> list[str]:
    """The relative links of a Markdown file whose file (or heading) does not exist."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)  # Code is not linked.
    dead = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
            if file_part else path
        if not os.path.exists(resolved):
            dead.append(target)
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            dead.append(target)
    return dead


def test_the_readme_is_short():
    with open(README, encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= MAX_README_LINES


def test_docs_have_an_index_that_lists_every_page():
    with open(os.path.join(ROOT, "docs", "README.md"), encoding="utf-8") as f:
        index = f.read()
    for path in documents()[1:]:
        name = os.path.basename(path)
        if name != "README.md":
            assert f"]({name})" in index, f"docs/README.md does not list {name}"


@pytest.mark.parametrize("path", documents(), ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_resolves(path):
    assert dead_links(path) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading) [gone](missing.md) [no](other.md#nowhere) "
                    "![img](other.md) [web](https://example.com/x)\n"
                    "```\n[in code](not-checked.md)\n```\n")
    assert dead_links(str(page)) == ["missing.md", "other.md#nowhere"]


def test_the_numbers_table_is_what_its_reports_render():
    """Every figure of the README's table comes from a committed report: `python -m
    bench.numbers` renders it, and the README must hold exactly that."""
    from bench import numbers
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert numbers.rendered_readme(text) == text, "run: .venv/bin/python -m bench.numbers"


def test_the_numbers_check_fails_on_a_figure_that_differs_from_its_report():
    from bench import numbers
    with open(README, encoding="utf-8") as f:
        text = f.read()
    table = numbers.render()
    assert len(table.splitlines()) > 3, "no report rendered"
    edited = text.replace(table, table.replace("|", "| 9.99 |", 4).replace("| 9.99 |", "|", 3))
    assert edited != text and numbers.rendered_readme(edited) != edited


# A date, or a phrase that compares with an earlier state: run logs, not what the code does.
HISTORY = re.compile(r"\b20\d\d-\d\d-\d\d\b|previous default|the one before|was the default")


def test_code_comments_and_docstrings_carry_no_history():
    found = []
    for package in ("bench", "components", "dcgan_common", "dcgan_kfp", "pipeline", "serving",
                    "trainer"):
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(directory, name), encoding="utf-8") as f:
                        found += [f"{name}:{number}" for number, line in enumerate(f, 1)
                                  if HISTORY.search(line)]
    assert found == []
