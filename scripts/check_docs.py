#!/usr/bin/env python3
"""Checks the documentation's relative links, and the README's length.

Every relative link (and image) in README.md, BENCHMARKS.md and docs/*.md must name a file or
directory inside the repository; a `#fragment` on a Markdown file must name one of its headings
(GitHub's anchors), and a bare `#fragment` one of the linking file's own. Links to other sites
(`https:`, `mailto:` ...) are not followed. README.md may have at most 200 lines.

Exit status 1, with one line per problem naming the file and the link, if anything fails; else
one summary line. Standard library only.
"""

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+[^)]*)?\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def documents():
    """The checked files: README.md, BENCHMARKS.md and docs/*.md, those that exist."""
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    return [f for f in files if f.is_file()]


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    kept = []
    for ch in text:
        if ch in " -_" or unicodedata.category(ch)[0] in "LN":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


_anchors = {}


def anchors(path):
    """Every anchor a Markdown file's headings give, duplicates numbered as GitHub does."""
    if path not in _anchors:
        found, seen = set(), {}
        fence = None
        for line in path.read_text(encoding="utf-8").splitlines():
            opening = FENCE.match(line)
            if fence is None and opening:
                fence = opening.group(1)
                continue
            if fence is not None:
                if line.strip().startswith(fence):
                    fence = None
                continue
            heading = HEADING.match(line)
            if heading:
                base = slug(heading.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        _anchors[path] = found
    return _anchors[path]


def links(text):
    """(line number, target) of every inline link, image and reference definition."""
    for number, line in prose_lines(text):
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
        for target in targets:
            yield number, target.strip("<>")


def problem_with(document, target):
    """Why a relative link does not resolve, or None when it does (or is not relative)."""
    if not target or SCHEME.match(target) or target.startswith("//"):
        return None
    path_part, _, fragment = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    if path_part.startswith("/"):
        return "is absolute; use a path relative to the file"
    resolved = (document.parent / path_part).resolve() if path_part else document
    try:
        resolved.relative_to(ROOT)
    except ValueError:
        return "points outside the repository"
    if not resolved.exists():
        return "names no file in the repository"
    if fragment and resolved.is_file() and resolved.suffix.lower() == ".md":
        if unquote(fragment).lower() not in anchors(resolved):
            where = resolved.relative_to(ROOT)
            return f"names no heading of {where} (anchor #{fragment})"
    return None


def main():
    problems = []
    checked = 0
    docs = documents()
    for document in docs:
        name = document.relative_to(ROOT)
        text = document.read_text(encoding="utf-8")
        for number, target in links(text):
            if target and not SCHEME.match(target) and not target.startswith("//"):
                checked += 1
            problem = problem_with(document, target)
            if problem:
                problems.append(f"{name}:{number}: link ({target}) {problem}")
    readme = ROOT / "README.md"
    readme_lines = len(readme.read_text(encoding="utf-8").splitlines()) if readme.is_file() else 0
    if readme_lines > README_MAX_LINES:
        problems.append(
            f"README.md: {readme_lines} lines, more than {README_MAX_LINES}; "
            "move the detail into docs/"
        )
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"check_docs: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"check_docs: {checked} relative links in {len(docs)} files resolve; "
        f"README.md has {readme_lines} lines (at most {README_MAX_LINES})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
