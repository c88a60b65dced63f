"""``benchmarks/crop_agreement.py``: a crop's camera model still maps each pixel to the same table spot,
movement counts a changed primitive as the worst case, and the script runs against a real eval's JSON
(and says what is wrong with a JSON that is not one, or a scenario file it cannot read)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("crop_agreement", ROOT / "benchmarks" / "crop_agreement.py")
crop_agreement = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crop_agreement)


def test_a_crop_keeps_every_pixel_on_its_table_spot():
    from edgeagent.camera import CameraModel

    cam = CameraModel.look_at((0.0, -0.6, 0.7), (0.0, 0.05, 0.0), fov_y_deg=50, width=640, height=480)
    image = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3)
    for left, top, right, bottom in crop_agreement.CROPS[1:]:
        cut, cut_cam = crop_agreement.crop(image, cam, left, top, right, bottom)
        assert cut.shape[:2] == (cut_cam.height, cut_cam.width) == (480 - top - bottom, 640 - left - right)
        assert (cut[0, 0] == image[top, left]).all()
        uv = np.array([[100.0, 200.0], [320.0, 400.0]])
        np.testing.assert_allclose(cut_cam.pixel_to_table(uv - (left, top)), cam.pixel_to_table(uv), atol=1e-9)


def test_movement_is_the_farthest_point_and_a_changed_primitive_is_the_worst():
    base = [["pick", (0.0, 0.0)], ["place", (0.1, 0.1)]]
    moved = [["pick", (0.0, 0.03)], ["place", (0.1, 0.05)]]
    assert crop_agreement.movement([base, base]) == 0.0
    assert crop_agreement.movement([base, moved]) == pytest.approx(0.05)
    assert crop_agreement.movement([base, [["pick", (0.0, 0.0)], ["pick", (0.1, 0.1)]]]) == crop_agreement.CHANGED
    assert crop_agreement.movement([base, base[:1]]) == crop_agreement.CHANGED


@pytest.mark.timeout(240)
def test_the_script_reads_a_real_eval_and_refuses_a_file_that_is_not_one(tmp_path):
    scenarios = tmp_path / "s.yaml"
    run = tmp_path / "run.json"
    cli = [sys.executable, "-m", "edgeagent.cli"]
    subprocess.run([*cli, "scenarios", "generate", "--families", "pick-place-block,offset", "--count", "3",
                    "--seed", "77", "-o", str(scenarios)], check=True, capture_output=True, timeout=60)
    subprocess.run([*cli, "eval", str(scenarios), "--planner", "model", "--quiet", "--json", str(run)],
                   check=True, capture_output=True, timeout=120)
    script = str(ROOT / "benchmarks" / "crop_agreement.py")
    proc = subprocess.run([sys.executable, script, str(scenarios), str(run)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "6 scenes" in proc.stdout and proc.stdout.count("confidence + movement") == 2

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"scenarios": [{"name": "nothing-like-it", "success": True}]}))
    proc = subprocess.run([sys.executable, script, str(scenarios), str(other)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "has no episode" in proc.stderr and str(scenarios) in proc.stderr

    proc = subprocess.run([sys.executable, script, str(tmp_path / "missing.yaml"), str(run)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "missing.yaml: cannot read scenario file" in proc.stderr
    assert "Traceback" not in proc.stderr
