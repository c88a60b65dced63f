"""CPU capabilities that change how we train and run: bfloat16 in hardware, INT8 kernels that saturate."""

from pathlib import Path

import numpy as np
import pytest

from edgeagent import cpu
from edgeagent.jetson import providers

AMD_AVX2 = ("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\n\n"
            "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\n")
XEON_SPR = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_tile\n"
ORIN = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp\n"


@pytest.fixture
def cpuinfo(tmp_path):
    def write(text):
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        return path
    return write


def test_bfloat16_only_where_the_cpu_has_it(cpuinfo, tmp_path):
    # Emulated bfloat16 is ~18x slower than float32, so training's default reads the flags.
    assert not cpu.native_bf16(cpuinfo(AMD_AVX2))
    assert cpu.native_bf16(cpuinfo(XEON_SPR))
    assert cpu.native_bf16(cpuinfo("flags\t: avx2 amx_bf16\n"))
    assert not cpu.native_bf16(tmp_path / "missing")


def test_int8_kernels_saturate_on_x86_without_vnni_only(cpuinfo, tmp_path):
    assert cpu.int8_kernels_saturate(cpuinfo(AMD_AVX2), machine="x86_64")
    assert not cpu.int8_kernels_saturate(cpuinfo(XEON_SPR), machine="x86_64")
    assert not cpu.int8_kernels_saturate(cpuinfo("flags\t: avx2 avx_vnni\n"), machine="x86_64")
    assert not cpu.int8_kernels_saturate(cpuinfo(ORIN), machine="aarch64")
    # Flags that cannot be read on x86: assume the worst (the unfused graph is still correct).
    assert cpu.int8_kernels_saturate(tmp_path / "missing", machine="AMD64")


def test_cpu_name_and_flags(cpuinfo, tmp_path):
    path = cpuinfo(AMD_AVX2)
    assert cpu.cpu_name(path) == "AMD EPYC"
    assert cpu.cpu_flags(path) == {"fpu", "sse4_2", "avx", "avx2", "fma"}
    assert cpu.cpu_flags(tmp_path / "missing") is None
    assert cpu.cpu_name(tmp_path / "missing")  # falls back to the platform's name


@pytest.mark.parametrize("saturate", [True, False])
def test_session_options_turn_qdq_fusion_off_exactly_where_kernels_saturate(monkeypatch, saturate):
    monkeypatch.setattr(cpu, "int8_kernels_saturate", lambda *a, **k: saturate)
    opts = providers.session_options()
    if saturate:
        assert opts.get_session_config_entry("session.disable_quant_qdq") == "1"
    else:
        with pytest.raises(RuntimeError):  # onnxruntime's way of saying the entry is not set
            opts.get_session_config_entry("session.disable_quant_qdq")


def test_shipped_int8_model_agrees_with_fp32_on_this_cpu():
    # The session the runtime creates here must give INT8 outputs close to FP32's: on a CPU whose fused
    # kernels saturate, they were garbage (confidence 0.49 against 0.98, every scenario failed).
    from edgeagent.models.runtime import ModelPlanner, default_model_dir, model_input
    from edgeagent.sim.render import default_camera, render
    from edgeagent.sim.scenario import load_scenarios

    root = Path(__file__).resolve().parents[1]
    int8, fp32 = ModelPlanner(default_model_dir("int8")), ModelPlanner(default_model_dir("fp32"))
    for sc in load_scenarios([root / "sim" / "scenarios" / "ci-model.yaml"])[:8]:
        camera = default_camera(640, 480)
        frame = render(sc.build_world(), camera, None, seed=0)
        feeds = {"image": model_input(frame, camera, int8.manifest)[0], "tokens": int8.tokens(sc.instruction)}
        a, b = int8.backend.run(feeds), fp32.backend.run(feeds)
        assert abs(float(a["confidence"].ravel()[0]) - float(b["confidence"].ravel()[0])) < 0.15, sc.name
        assert np.array_equal(a["prim_logits"][0, 0].argmax(), b["prim_logits"][0, 0].argmax()), sc.name
