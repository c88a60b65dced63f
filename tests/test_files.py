"""Atomic writes: what every result, model, manifest, engine and scenario file goes through."""

import json
import os
import stat

import numpy as np
import pytest

from edgeagent.files import write_atomic, write_json_atomic, write_with_atomic


def test_write_replaces_whole_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "deep" / "planner.engine"
    write_atomic(target, b"first")
    write_atomic(target, memoryview(b"second plan"))
    assert target.read_bytes() == b"second plan"
    write_atomic(target, "text é")
    assert target.read_text(encoding="utf-8") == "text é"
    assert sorted(p.name for p in target.parent.iterdir()) == ["planner.engine"]


def test_a_writer_that_fails_midway_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "data.npz"
    write_with_atomic(target, lambda buf: np.savez(buf, x=np.arange(3)))

    def broken(buf):
        buf.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_with_atomic(target, broken)
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]


def test_new_files_are_readable_by_others_and_replaced_files_keep_their_mode(tmp_path):
    fresh = write_atomic(tmp_path / "a.json", "{}")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    os.chmod(fresh, 0o600)
    write_atomic(fresh, "[]")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_json_is_strict_and_a_refused_value_writes_nothing(tmp_path):
    target = tmp_path / "results.json"
    write_json_atomic(target, {"median": 1.5})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"median": float("nan")})
    assert json.loads(target.read_text()) == {"median": 1.5}
