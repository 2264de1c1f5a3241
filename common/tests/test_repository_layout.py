"""The repository's layout: which names are version numbers, which folders are published versions."""

from __future__ import annotations

from resnet_common.repository_layout import CARD_NAME, newest_version_dir, published_versions, version_number


def test_a_version_number_is_ascii_digits():
    assert [version_number(t) for t in ("1", "10", "007")] == [1, 10, 7]
    # str.isdigit() is True for each of these; int() refuses "²" and reads "٣" and "１" as 3 and 1
    for text in ("", "x", "-1", " 1", "1.0", "²", "٣", "１"):
        assert version_number(text) is None, text


def test_published_versions_are_number_folders_with_a_card(tmp_path):
    for name, card in [
        ("2", True),
        ("10", True),
        ("1", True),
        ("11", False),
        (".tmp-3", True),
        ("²", True),
        ("٣", True),
    ]:
        (tmp_path / name).mkdir()
        if card:
            (tmp_path / name / CARD_NAME).write_text("{}")
    (tmp_path / "4").write_text("a file, not a folder")
    assert published_versions(tmp_path) == [1, 2, 10]
    assert published_versions(tmp_path / "missing") == []
    assert newest_version_dir(tmp_path) == tmp_path / "10"  # by number, not by name ("2" > "10")
    assert newest_version_dir(tmp_path / "missing") is None
