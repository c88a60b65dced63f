"""The command line as a user meets it: exit codes and messages on bad input, nothing half-written."""

import json
import subprocess
import sys

import pytest

from edgeagent.cli import main

GOOD = """\
- name: red-into-blue
  family: pick-place
  instruction: Put the red block in the blue bowl
  scene:
    seed: 7
    blocks: [red, {color: green, at: [0.10, -0.05]}]
    bowls: [blue]
  goal:
    - in: [red block, blue bowl]
"""


@pytest.mark.parametrize("text, match", [
    ("- name: a\n  instruction: x\n  scene: {blocks: [red]}\n  goal: {inside: [red block, blue bowl]}\n",
     r"bad.yaml.*'a'.*goal.*unknown predicate 'inside'"),
    ("- name: a\n  instruction: x\n  scene: {blocks: [red]}\n  goal: {in: [red block, blue bowl]}\n",
     r"bad.yaml.*'a'.*blue bowl"),
    ("- name: a\n  instruction: x\n  scene: {blocks: [magenta]}\n  goal: {at: [magenta block, middle]}\n",
     r"bad.yaml.*'a'.*magenta"),
    ("- name: a\n  instruction: x\n  scene: {blocks: [{color: red, at: [0.9, 0]}]}\n  goal: {at: [red block, middle]}\n",
     r"bad.yaml.*'a'.*outside the workspace"),
    ("- name: a\n  instruction: [1\n", r"bad.yaml"),
    ("- name: a\n  scene: {blocks: [red]}\n  goal: {at: [red block, middle]}\n", r"bad.yaml.*'a'.*instruction"),
])
def test_eval_rejects_bad_scenario_files_with_exit_2_and_writes_nothing(tmp_path, capsys, text, match):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    out = tmp_path / "out.json"
    code = main(["eval", str(good), str(bad), "--planner", "expert", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    import re

    assert re.search(match, err, re.S), err
    assert not out.exists()


def test_eval_missing_file_and_unknown_planner(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["eval", str(good), "--planner", "oracle"]) == 2
    assert "unknown planner 'oracle'" in capsys.readouterr().err


def test_eval_expert_prints_table_and_writes_json(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    out = tmp_path / "res.json"
    assert main(["eval", str(good), "--planner", "expert", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "red-into-blue" in table and "pick-place" in table and "100.0%" in table
    data = json.loads(out.read_text())
    assert data["scenarios"][0]["success"] is True and data["summary"]["overall"]["success_rate"] == 1.0


def test_demo_runs_end_to_end_and_writes_a_png(tmp_path):
    png = tmp_path / "strip.png"
    proc = subprocess.run([sys.executable, "-m", "edgeagent.cli", "demo", "--planner", "expert", "--out", str(png)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "outcome: SUCCESS" in proc.stdout and str(png) in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_says_your_own_instruction_on_the_scenes_scene(capsys, tmp_path):
    said = "put the red block in the blue bowl and then the green one in the top left corner"
    assert main(["demo", "--scenario", "red-into-blue", "--planner", "model", "--instruction", said,
                 "--out", str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr().out
    assert said in out and "next: home()" in out and "no goal to check" in out and "SUCCESS" not in out
    assert main(["demo", "--instruction", "  ", "--out", str(tmp_path / "y.png")]) == 2
    assert "--instruction is empty" in capsys.readouterr().err


def test_demo_unknown_scenario_is_a_clear_error(capsys, tmp_path):
    assert main(["demo", "--scenario", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "no scenario named 'nope'" in capsys.readouterr().err


def test_eval_calibrate_prints_and_records_a_threshold_and_rejects_a_bad_rate(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    out = tmp_path / "res.json"
    assert main(["eval", str(good), "--planner", "model", "--quiet", "--calibrate", "0.5", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    printed = capsys.readouterr().out
    if data["scenarios"][0]["success"]:  # the one episode clears its own first-plan confidence
        cal = data["calibrated_threshold"]
        assert abs(cal["threshold"] - data["scenarios"][0]["confidences"][0]) < 1e-3 and cal["accepted"] == 1.0
        assert f"threshold {cal['threshold']:.4f}" in printed and "router.threshold" in printed
        # 1 of 1 succeeded: a 50% rate over one episode is uncertain by 50 points, no margin fits under 100%
        assert cal["standard_error"] == 0.5 and "standard error 50.00 points" in printed
        assert "evaluate more scenarios" in printed
        assert main(["eval", str(good), "--planner", "model", "--quiet", "--calibrate", "0.01"]) == 0
        assert "ask for about 20.9%" in capsys.readouterr().out  # 1% + 2 x 9.95 points
    else:
        assert data["calibrated_threshold"] is None and "no confidence threshold" in printed
    assert main(["eval", str(good), "--planner", "model", "--calibrate", "98"]) == 2
    assert "--calibrate must be a success rate" in capsys.readouterr().err
