"""Bad input through the command line: one paragraph, exit 2, nothing left on disk.

Every case runs ``python -m mcrl_kit prepare`` in-process (``cli.main``) and checks the
contract of ``mcrl_kit.errors``: stderr is one paragraph starting ``error:`` that names
the file and says ``Fix:``, no traceback, the ``--out`` folder was not created and its
parent holds no temporary leftovers.
"""

from __future__ import annotations

import gzip
import json

import pytest

from mcrl_kit.cli import main

RR_HEADER = "timestamp,visitorid,event,itemid,transactionid\n"
RR_GOOD = RR_HEADER + "".join(f"{t},{v},view,{i},\n" for v in (1, 2, 3) for t, i in ((1, 10), (2, 11), (3, 10)))
CLICK = "{s},2014-04-07T10:51:{sec:02d}.277Z,{i},0\n"
CLICKS_GOOD = "".join(CLICK.format(s=s, sec=k, i=200 + k) for s in (1, 2, 3) for k in range(3))


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


def write(folder, name: str, content: str | bytes):
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def prepare_fails(tmp_path, capsys, source: str, *paths, extra=(), names=None) -> str:
    """Run a failing ``prepare``; check the error contract; return the message."""
    parent = tmp_path / "outparent"
    parent.mkdir(exist_ok=True)
    out = parent / "prepared"
    before = sorted(p.name for p in parent.iterdir())
    rc = main(["prepare", "--source", source, "--path", *map(str, paths), "--out", str(out), "--no-progress", *extra])
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, (captured.out, err)
    assert err.startswith("error: ")
    assert "\n" not in err.strip(), "one paragraph"
    assert "Fix:" in err
    assert "Traceback" not in err
    for name in names if names is not None else [paths[-1].name]:
        assert name in err, f"{name} not named in: {err}"
    if out.name not in before:
        assert not out.exists()
    assert sorted(p.name for p in parent.iterdir()) == before, "temp leftovers next to --out"
    return err


# --- files that are not there or not files ------------------------------------------------
def test_missing_file(tmp_path, capsys, inputs):
    err = prepare_fails(tmp_path, capsys, "retailrocket", inputs / "events.csv")
    assert "no such file" in err


def test_directory_instead_of_file(tmp_path, capsys, inputs):
    err = prepare_fails(tmp_path, capsys, "retailrocket", inputs)
    assert "is a directory" in err


@pytest.mark.parametrize("content", [b"", gzip.compress(b"")], ids=["zero-bytes", "empty-gzip"])
def test_empty_file(tmp_path, capsys, inputs, content):
    err = prepare_fails(tmp_path, capsys, "retailrocket", write(inputs, "events.csv.gz", content))
    assert "empty" in err


def test_header_only(tmp_path, capsys, inputs):
    err = prepare_fails(tmp_path, capsys, "retailrocket", write(inputs, "events.csv", RR_HEADER))
    assert "header but no rows" in err


# --- columns and values -------------------------------------------------------------------
def test_missing_columns_say_which_and_what_was_found(tmp_path, capsys, inputs):
    path = write(inputs, "events.csv", "timestamp,visitor,event,item\n1,2,view,3\n")
    err = prepare_fails(tmp_path, capsys, "retailrocket", path)
    assert "missing column(s) visitorid, itemid, transactionid" in err
    assert "found: timestamp, visitor, event, item" in err


def test_tab_separated_file_is_recognised(tmp_path, capsys, inputs):
    path = write(inputs, "events.csv", RR_GOOD.replace(",", "\t"))
    err = prepare_fails(tmp_path, capsys, "retailrocket", path)
    assert "missing column(s)" in err and "tab-separated" in err


def test_unknown_event_name(tmp_path, capsys, inputs):
    path = write(inputs, "events.csv", RR_GOOD + "4,1,purchase,10,\n")
    err = prepare_fails(tmp_path, capsys, "retailrocket", path)
    assert "unknown event name(s) 'purchase'" in err and "line 11" in err


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("4,abc,view,10,", "visitorid 'abc' on line 11 is not an integer"),
        ("4,1,view,10.5,", "itemid '10.5' on line 11 is not an integer"),
        ("yesterday,1,view,10,", "timestamp 'yesterday' on line 11 is not an integer"),
        ("4,1,view", "line 11 has no itemid"),
    ],
    ids=["visitor", "item", "timestamp", "short-row"],
)
def test_non_integer_ids_and_timestamps(tmp_path, capsys, inputs, row, said):
    err = prepare_fails(tmp_path, capsys, "retailrocket", write(inputs, "events.csv", RR_GOOD + row + "\n"))
    assert said in err


@pytest.mark.parametrize("line", [11, 2], ids=["later-line", "first-data-line"])
def test_row_with_surplus_fields(tmp_path, capsys, inputs, line):
    lines = RR_GOOD.splitlines(keepends=True)
    lines.insert(line - 1, "4,1,view,10,,surplus\n")
    err = prepare_fails(tmp_path, capsys, "retailrocket", write(inputs, "events.csv", "".join(lines)))
    assert f"line {line}" in err and "fields" in err


def test_nothing_left_after_filtering(tmp_path, capsys, inputs):
    path = write(inputs, "events.csv", RR_HEADER + "".join(f"{v},{v},view,{v},\n" for v in range(20)))
    err = prepare_fails(tmp_path, capsys, "retailrocket", path)
    assert "no events are left" in err and "20 rows read" in err


def test_not_utf8(tmp_path, capsys, inputs):
    err = prepare_fails(tmp_path, capsys, "retailrocket", write(inputs, "events.csv", b"\xff\xfe\x00\x01" * 50))
    assert "not UTF-8" in err


# --- corrupt gzip -------------------------------------------------------------------------
def corrupt_gzips() -> dict[str, bytes]:
    data = gzip.compress((RR_GOOD * 2_000).encode())
    flipped = bytearray(data)
    flipped[-6] ^= 0xFF  # the stored length/CRC no longer match
    return {"truncated": data[: len(data) // 2], "crc": bytes(flipped), "not-gzip": b"PK\x03\x04 a zip, not a gzip"}


@pytest.mark.parametrize("kind", list(corrupt_gzips()))
def test_corrupt_gzip(tmp_path, capsys, inputs, kind):
    err = prepare_fails(tmp_path, capsys, "retailrocket", write(inputs, "events.csv.gz", corrupt_gzips()[kind]))
    assert "not a valid gzip file" in err


# --- Yoochoose ----------------------------------------------------------------------------
def test_buys_matching_no_clicks(tmp_path, capsys, inputs):
    clicks = write(inputs, "yoochoose-clicks.dat", CLICKS_GOOD)
    buys = write(inputs, "yoochoose-buys.dat", "77,2014-04-07T10:52:00.000Z,200,0,1\n")
    err = prepare_fails(tmp_path, capsys, "yoochoose", clicks, buys, names=["yoochoose-buys.dat", "yoochoose-clicks.dat"])
    assert "none of its 1 sessions appear in the clicks" in err


def test_swapped_clicks_and_buys(tmp_path, capsys, inputs):
    clicks = write(inputs, "yoochoose-clicks.dat", CLICKS_GOOD)
    buys = write(inputs, "yoochoose-buys.dat", "1,2014-04-07T10:52:00.000Z,200,0,1\n")
    err = prepare_fails(tmp_path, capsys, "yoochoose", buys, clicks, names=["yoochoose-buys.dat"])
    assert "expected 4" in err and "clicks first" in err


def test_preprocessed_tab_separated_clicks(tmp_path, capsys, inputs):
    path = write(inputs, "clicks.txt", "SessionId\tItemId\tTime\n3\t214716935\t1396437466.94\n")
    err = prepare_fails(tmp_path, capsys, "yoochoose", path)
    assert "tab-separated" in err


def test_clicks_with_a_header_row(tmp_path, capsys, inputs):
    path = write(inputs, "yoochoose-clicks.dat", "session_id,timestamp,item_id,category\n" + CLICKS_GOOD)
    err = prepare_fails(tmp_path, capsys, "yoochoose", path)
    assert "header row" in err


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("3,2014-04-07T10:51:09.277Z,abc,0", "item_id 'abc' on line 10 is not an integer"),
        ("x3,2014-04-07T10:51:09.277Z,5,0", "session_id 'x3' on line 10 is not an integer"),
        ("3,2014-04-07T10:51:09.277Z,5", "line 10 has fewer fields"),
        ("3,2014-04-07T10:51:09.277Z,5,0,9", "Expected 4 fields in line 10, saw 5"),
        ("3,last tuesday,5,0", "timestamp 'last tuesday', not an ISO 8601 time"),
    ],
    ids=["item", "session", "short-row", "surplus-field", "timestamp"],
)
def test_bad_click_rows(tmp_path, capsys, inputs, row, said):
    path = write(inputs, "yoochoose-clicks.dat", CLICKS_GOOD + row + "\n")
    err = prepare_fails(tmp_path, capsys, "yoochoose", path)
    assert said in err


def test_no_session_long_enough(tmp_path, capsys, inputs):
    path = write(inputs, "yoochoose-clicks.dat", "".join(CLICK.format(s=s, sec=1, i=5) for s in range(10)))
    err = prepare_fails(tmp_path, capsys, "yoochoose", path)
    assert "no session has ≥ 3 clicks" in err


def test_missing_buys_file_fails_before_reading_clicks(tmp_path, capsys, inputs):
    clicks = write(inputs, "yoochoose-clicks.dat", CLICKS_GOOD)
    err = prepare_fails(tmp_path, capsys, "yoochoose", clicks, inputs / "yoochoose-buys.dat")
    assert "no such file" in err


def test_corrupt_gzip_clicks(tmp_path, capsys, inputs):
    data = gzip.compress((CLICKS_GOOD * 5_000).encode())
    path = write(inputs, "yoochoose-clicks.dat.gz", data[: len(data) // 2])
    err = prepare_fails(tmp_path, capsys, "yoochoose", path)
    assert "not a valid gzip file" in err


# --- any event log ------------------------------------------------------------------------
def test_events_mapped_column_missing(tmp_path, capsys, inputs):
    path = write(inputs, "log.csv", "user,ts,item_id,is_buy\nu1,1,5,0\n")
    err = prepare_fails(tmp_path, capsys, "events", path, extra=["--column", "session_id=visitor", "--column", "timestamp=ts"])
    assert "missing column(s) visitor (for session_id)" in err and "found: user, ts, item_id, is_buy" in err


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ("u1,1,5,2\n", "is_buy must be 0 or 1"),
        (",1,5,0\n", "empty session_id"),
        ("u1,soon,5,0\n", "neither numbers nor dates"),
    ],
    ids=["flag", "empty-id", "timestamp"],
)
def test_events_bad_values(tmp_path, capsys, inputs, rows, said):
    path = write(inputs, "log.csv", "session_id,timestamp,item_id,is_buy\nu1,1,5,0\n" + rows)
    err = prepare_fails(tmp_path, capsys, "events", path)
    assert said in err


def test_events_corrupt_parquet(tmp_path, capsys, inputs):
    err = prepare_fails(tmp_path, capsys, "events", write(inputs, "log.parquet", b"PAR1 not really parquet"))
    assert "not a readable parquet file" in err


# --- a failed re-prepare keeps the old dataset ----------------------------------------------
def test_failed_force_reprepare_keeps_the_old_dataset(tmp_path, capsys, inputs):
    # six visitors: the smallest log whose 80/10/10 split leaves every part non-empty
    good = write(inputs, "events.csv", RR_HEADER + "".join(f"{t},{v},view,{i},\n" for v in range(1, 7)
                                                         for t, i in ((1, 10), (2, 11), (3, 10))))
    out = tmp_path / "outparent" / "prepared"
    assert main(["prepare", "--source", "retailrocket", "--path", str(good), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert json.loads(files["stats.json"])["sessions"] == 6

    bad = write(inputs, "broken.csv", RR_GOOD + "4,1,purchase,10,\n")
    prepare_fails(tmp_path, capsys, "retailrocket", bad, extra=["--force"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
