"""Feedback rows: parsing, formula neutralisation, length limits, and concurrent appends from processes."""

import csv
import json
import multiprocessing

import pytest

import feedback


def test_parse_empty_is_none():
    assert feedback.parse({}) is None
    assert feedback.parse({"report": ""}) is None
    assert feedback.parse({"other": "x"}) is None


def test_parse_page_report_json():
    report = json.dumps({"filename": "abc.jpg", "prediction": "tabby", "score": 0.9123})
    assert feedback.parse({"report": report}) == {"filename": "abc.jpg", "prediction": "tabby", "score": "0.9123"}


def test_parse_seed_style_dict_literal_and_explicit_fields_override():
    values = feedback.parse({"report": "{'filename': 'a.png', 'prediction': 'cat', 'score': 0.5}", "prediction": "dog"})
    assert values == {"filename": "a.png", "prediction": "dog", "score": "0.5"}


def test_parse_json_body():
    assert feedback.parse({}, {"filename": "b.gif", "score": 1}) == {
        "filename": "b.gif",
        "prediction": "",
        "score": "1",
    }


def test_parse_rejects_unreadable_report_and_code():
    with pytest.raises(feedback.FeedbackError):
        feedback.parse({"report": "not a dict"})
    with pytest.raises(feedback.FeedbackError):
        feedback.parse({"report": "__import__('os').system('true')"})


def test_parse_rejects_over_long_fields(monkeypatch):
    with pytest.raises(feedback.FeedbackError, match="prediction"):
        feedback.parse({"prediction": "x" * 513})
    assert feedback.parse({"prediction": "x" * 512})["prediction"] == "x" * 512
    monkeypatch.setenv("FEEDBACK_MAX_FIELD", "4")
    with pytest.raises(feedback.FeedbackError):
        feedback.parse({"filename": "abcde"})


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\r=x", " =x"),  # one line per report: a line break becomes a space
        ("a\r\nb\nc", "a b c"),
        ("a;=cmd", "a;'=cmd"),  # a spreadsheet splitting on ';' would start a cell at "=cmd"
        ("x\t=1", "x\t'=1"),
        ("a,@b|+c", "a,'@b|'+c"),
        ("tabby", "tabby"),
        ("0.91", "0.91"),
        ("a=b", "a=b"),
        ("nul\x00byte", "nulbyte"),
    ],
)
def test_neutralise(value, expected):
    assert feedback.neutralise(value) == expected


def test_store_creates_the_folder_and_adds_one_line_per_report(tmp_path):
    """The original app's contract: the first report in a new file adds exactly one line (no header row)."""
    path = tmp_path / "feedback" / "feedback.csv"
    feedback.store({"filename": "a.jpg", "prediction": '=HYPERLINK("http://x")', "score": "0.5"}, str(path))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    feedback.store({"filename": "b.jpg", "prediction": 'line\nbreak, "quoted"', "score": "0.25"}, str(path))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    assert [len(r) for r in rows] == [len(feedback.COLUMNS)] * 2
    assert rows[0][1:] == ["a.jpg", '\'=HYPERLINK("http://x")', "0.5"]
    assert rows[1][1:] == ["b.jpg", 'line break, "quoted"', "0.25"]
    assert rows[0][0].endswith("+00:00")
    assert '"a.jpg"' in path.read_text()  # every cell quoted, plain ones too


def _writer(path: str, worker: int, count: int) -> None:
    for i in range(count):
        feedback.store({"filename": f"w{worker}-{i}.jpg", "prediction": "p" * 400 + '\n,"', "score": str(i)}, path)


def test_concurrent_appends_from_processes_keep_every_row(tmp_path):
    path = str(tmp_path / "feedback" / "feedback.csv")
    workers, count = 6, 40
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    body = list(csv.reader(open(path, newline="", encoding="utf-8")))
    assert len(body) == workers * count == len(open(path, encoding="utf-8").read().splitlines())
    assert {r[1] for r in body} == {f"w{w}-{i}.jpg" for w in range(workers) for i in range(count)}
    assert all(len(r) == 4 and r[2] == "p" * 400 + ' ,"' for r in body)


def test_store_waits_for_the_lock_held_by_another_writer(tmp_path):
    """While another process holds the lock, store() does not write; it appends as soon as the lock is free."""
    import fcntl
    import time

    path = tmp_path / "feedback.csv"
    ctx = multiprocessing.get_context("fork")
    with open(path, "a") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        proc = ctx.Process(target=_writer, args=(str(path), 0, 1))
        proc.start()
        time.sleep(0.3)
        assert path.stat().st_size == 0 and proc.is_alive()
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
    proc.join(10)
    assert proc.exitcode == 0
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    assert len(rows) == 1 and rows[0][1] == "w0-0.jpg"
