"""The wheel ships every subpackage under the edgeagent name (DESIGN §2 folder mapping)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ["edgeagent", "edgeagent.primitives", "edgeagent.models", "edgeagent.jetson", "edgeagent.sim",
               "edgeagent.commands"]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_imports_every_subpackage(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("edgeagent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    # No bare top-level packages: everything lives under edgeagent/.
    assert {n.split("/")[0] for n in names if not n.startswith("edgeagent-")} == {"edgeagent"}
    assert "edgeagent/sim/scenarios/demo.yaml" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                   check=True)
    # Runtime dependencies (numpy, cv2, ...) come from this environment, but not its edgeagent.
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "deps.pth").write_text(deps + "\n")
    code = ("import importlib, edgeagent\n"
            f"mods = {SUBPACKAGES!r}\n"
            "for m in mods:\n"
            "    mod = importlib.import_module(m)\n"
            f"    assert mod.__file__.startswith({site!r}), (m, mod.__file__)\n"
            "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    script = subprocess.run([str(py), "-m", "edgeagent.cli", "primitives"], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert script.returncode == 0 and '"name": "pick"' in script.stdout, script.stderr
