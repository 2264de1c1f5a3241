"""The README and docs/ say only what is true of the repository: their safe shell blocks run, the `make` targets
and repository paths they name exist, and their links between documents point at files and headings that exist.

A fenced block with the info string `bash safe` is run as written from the repository root: mark only quick,
side-effect-free commands that need nothing started (validations, renders into a temporary folder).
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

from testkit.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SAFE_TIMEOUT_S = 120
# Paths other branches add (the shared package, protocol and model-repository docs): checked once they exist.
PENDING = {"common/", "docs/protocol.md", "docs/model-repository.md"}
GENERATED = {"model_card.json", "class_index.json"}  # written by conversion/ next to the model, never tracked
NOT_PATHS = {"svc/api"}  # kubectl's resource/name
MEDIA_TYPES = ("application/", "image/", "multipart/", "text/")  # content types, not folders
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MAKE = re.compile(r"(?<![\w./-])make ([a-z][\w-]*)")
PATH_LIKE = re.compile(r"^\.?[a-z0-9_][\w.-]*(/[\w.-]*)*$")  # lower-case start: not GET/POST, not A/B prose
FILE_EXT = re.compile(r"\.(py|sh|md|ya?ml|json|toml|txt|conf|template|example|ini|png|jpg|c)$")


def _rel(doc: Path) -> str:
    return str(doc.relative_to(REPO))


def _fences(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]


def _prose(text: str) -> str:
    return FENCE.sub("", text)


def _safe_blocks() -> list[tuple[str, str]]:
    return [(_rel(doc), body) for doc in DOCS for info, body in _fences(doc.read_text()) if info == "bash safe"]


@functools.cache
def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def _ignored(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0


def _exists(path: str) -> bool:
    """At the repository root, or (for names written relative to their folder) as the tail of a tracked path."""
    if (REPO / path).exists() or path in PENDING | GENERATED:
        return True
    if _ignored(path.rstrip("/")) or _ignored(path.rstrip("/") + "/"):  # generated: .run/, model/artifacts, ...
        return True
    tail = path.rstrip("/")
    return any(f == tail or f.endswith("/" + tail) or ("/" + tail + "/") in ("/" + f) for f in _tracked())


def _path_candidates(code: str) -> set[str]:
    """Tokens of a code span or block that name a repository file or folder (not URLs, keys, variables...)."""
    found = set()
    for token in code.split():
        token = token.split("@")[-1].strip("()[],;\"'")
        if (
            not token
            or token in NOT_PATHS
            or token.startswith(("/", "~", "../", "-", *MEDIA_TYPES))
            or not PATH_LIKE.match(token)
        ):
            continue
        if any(re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]*", part) for part in token.split("/")):
            continue  # INSTANCE_PATH/secret_key: a setting's value, not a repository path
        if "/" in token or FILE_EXT.search(token):
            found.add(token)
    return found


def _code_of(text: str) -> list[str]:
    """Code spans and fenced blocks, except ```text blocks (illustrations: a folder tree, a log line)."""
    return SPAN.findall(_prose(text)) + [body for info, body in _fences(text) if info != "text"]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in _prose(doc.read_text()).splitlines() if line.startswith("#")}


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))


def test_some_blocks_are_marked_safe():
    assert _safe_blocks(), "no ```bash safe block in README.md or docs/: the commands test below would test nothing"


@pytest.mark.parametrize(("doc", "block"), _safe_blocks(), ids=lambda v: v if v.endswith(".md") else v.split()[0])
def test_safe_block_runs(doc, block):
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=REPO, capture_output=True, text=True, timeout=SAFE_TIMEOUT_S
    )
    if run.returncode == 127:
        pytest.skip(f"a tool of this {doc} block is not installed (make test installs it): {run.stderr.strip()}")
    assert run.returncode == 0, (
        f"{doc} block failed ({run.returncode}):\n{block}\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    )


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_make_targets_named_exist(doc):
    named = {target for code in _code_of(doc.read_text()) for target in MAKE.findall(code)}
    missing = sorted(named - _make_targets())
    assert not missing, f"{_rel(doc)} names make targets the Makefile lacks: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_repository_paths_named_exist(doc):
    named = {path for code in _code_of(doc.read_text()) for path in _path_candidates(code)}
    missing = sorted(path for path in named if not _exists(path))
    assert not missing, f"{_rel(doc)} names paths that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_links_point_at_files_and_headings(doc):
    broken = []
    for target in LINK.findall(_prose(doc.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: outside the repository
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        rel = str(linked.relative_to(REPO)) if linked.is_relative_to(REPO) else str(linked)
        if not linked.exists():
            if rel not in PENDING:
                broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(target)
    assert not broken, f"{_rel(doc)} has broken links: {broken}"


def test_path_candidates_recognise_paths_and_ignore_the_rest():
    code = (
        "curl -F file=@tests/data/photos/cat.jpg http://127.0.0.1:5000/predict ml:jobs INSTANCE_PATH/secret_key (api/)"
    )
    assert _path_candidates(code) == {"tests/data/photos/cat.jpg", "api/"}
    assert _slug("Heatmaps (`explain=1`)") == "heatmaps-explain1" and _slug("Where to add…") == "where-to-add"
