"""The upload folder stays bounded: old uploads are pruned, fresh ones and other folders are left alone."""

import io
import os
import time

import uploads_gc
from testkit.images import good_images


def _touch(path, age_s: float) -> None:
    path.write_bytes(b"x")
    old = time.time() - age_s
    os.utime(path, (old, old))


def test_prune_removes_only_files_older_than_the_cutoff(tmp_path):
    _touch(tmp_path / "old.jpg", 7200)
    _touch(tmp_path / "fresh.jpg", 10)
    (tmp_path / "subdir").mkdir()
    assert uploads_gc.prune(str(tmp_path), time.time() - 3600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.jpg", "subdir"]


def test_prune_of_a_missing_folder_is_a_no_op(tmp_path):
    assert uploads_gc.prune(str(tmp_path / "nope"), time.time()) == 0


def test_maybe_prune_runs_at_most_once_per_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads_gc, "_last_run", 0.0)
    _touch(tmp_path / "a.jpg", 7200)
    assert uploads_gc.maybe_prune(str(tmp_path), 3600, 60) == 1
    _touch(tmp_path / "b.jpg", 7200)
    assert uploads_gc.maybe_prune(str(tmp_path), 3600, 60) == 0  # within the interval: skipped
    assert (tmp_path / "b.jpg").exists()


def test_zero_max_age_keeps_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads_gc, "_last_run", 0.0)
    _touch(tmp_path / "a.jpg", 10**6)
    assert uploads_gc.maybe_prune(str(tmp_path), 0, 0) == 0


def test_upload_path_prunes_old_files(client, monkeypatch, tmp_path):
    import settings

    folder = settings.UPLOAD_FOLDER
    os.makedirs(folder, exist_ok=True)
    stale = os.path.join(folder, "0" * 32 + ".jpg")
    with open(stale, "wb") as fh:
        fh.write(b"old")
    os.utime(stale, (time.time() - 10**6, time.time() - 10**6))
    monkeypatch.setattr(uploads_gc, "_last_run", 0.0)
    monkeypatch.setattr("views.model_predict", lambda name, top_k=5, explain=False: ("tabby", 0.5))
    response = client.post(
        "/",
        data={"file": (io.BytesIO(good_images()["rgb.jpg"]), "cat.jpg")},  # the page stores
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert not os.path.exists(stale)
