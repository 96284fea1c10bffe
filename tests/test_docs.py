"""The docs stay a guide: a short README, and no relative link in README.md or docs/ that leads nowhere."""

import re
from pathlib import Path

import pytest
from conftest import ROOT

MAX_README_LINES = 300
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def prose_lines(path: Path, keep_code: bool = False) -> list[str]:
    """The file's lines, those in fenced code blocks blank; inline code blanked too unless
    `keep_code` (a heading's code is part of its anchor, a link inside code is no link)."""
    lines, fence = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := FENCE.match(line):
            mark = m.group(1)[0]
            fence = mark if fence is None else (None if mark == fence else fence)
            lines.append("")
        elif fence is not None:
            lines.append("")
        else:
            lines.append(line if keep_code else re.sub(r"(`+)(?:(?!\1).)+\1", "``", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor, repeats numbered as GitHub numbers them (x, x-1, x-2)."""
    found: set[str] = set()
    for line in prose_lines(path, keep_code=True):
        if m := HEADING.match(line):
            base, n = slug(m.group(2)), 0
            name = base
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative markdown link outside code."""
    return [
        (number, target)
        for number, line in enumerate(prose_lines(path), 1)
        for target in LINK.findall(line)
        if not target.startswith(EXTERNAL)
    ]


def broken(path: Path) -> list[str]:
    """Links whose file does not exist, or whose #anchor is no heading of the markdown file named."""
    problems = []
    for number, target in links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{shown(path)}:{number}: {target}"
        if not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where}: no heading #{anchor} in {shown(linked)}")
    return problems


def test_the_readme_stays_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


@pytest.mark.parametrize("path", doc_files(), ids=shown)
def test_every_relative_link_resolves(path):
    problems = broken(path)
    assert not problems, "\n".join(problems)


def test_the_link_check_finds_what_is_broken(tmp_path):
    assert slug("Benchmarks (`make bench`)") == "benchmarks-make-bench"
    assert slug("On a GPU: the trainer's bf16 FSDP2 path") == "on-a-gpu-the-trainers-bf16-fsdp2-path"
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n## Top\n[a](page.md#top-1) [b](missing.md) [c](#nowhere) [d](https://x.org/y)\n"
        "`[e](in-code.md)`\n```\n[f](in-fence.md)\n```\n",
        encoding="utf-8",
    )
    assert [target for _, target in links(page)] == ["page.md#top-1", "missing.md", "#nowhere"]
    assert broken(page) == [
        "page.md:3: missing.md: no such file",
        "page.md:3: #nowhere: no heading #nowhere in page.md",
    ]
