"""The manifest contract: round trip, and every refusal says which part disagrees and what to do."""

from __future__ import annotations

import json
from typing import Annotated

import onnx
import pytest
from tiny_planner import PRIMITIVES, build_model, write_model

from edgeagent.errors import ContractMismatch, ModelError
from edgeagent.models.manifest import (Manifest, PrimitiveSpec, file_sha256, load_manifest, verify, verify_file,
                                       write_manifest)
from edgeagent.models.view import View
from edgeagent.primitives import Range, Registry, TablePoint, registry


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def fresh(tmp_path):
    """A model folder this test may damage."""
    return write_model(tmp_path / "m")


def test_round_trip_through_the_file(model_dir, tmp_path):
    manifest, onnx_path = load_manifest(model_dir)
    assert onnx_path == model_dir / "planner.onnx"
    assert manifest.sha256 == file_sha256(onnx_path)
    assert manifest.P == 4 and manifest.primitives[2] == PrimitiveSpec("push", ("start", "end"))
    assert manifest.outputs["point_offset"]["shape"] == [1, 3, 2, 64, 2]
    write_manifest(manifest, tmp_path)
    again, _ = load_manifest(tmp_path / "planner.onnx")  # also found from the .onnx path
    assert again == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left behind


def test_the_view_round_trips_and_older_manifests_are_the_camera_view(model_dir, tmp_path):
    data = json.loads((model_dir / "manifest.json").read_text())
    assert data["view"] == {"kind": "camera"}
    del data["view"]  # written before views existed
    assert Manifest.from_dict(data).view == View("camera")
    table = Manifest.from_dict(data).replace(view=View("table", half_extent_m=0.4))
    write_manifest(table, tmp_path)
    assert load_manifest(tmp_path)[0].view == View("table", half_extent_m=0.4, plane_z_m=0.02)


def test_the_object_map_output_is_declared_by_objects_and_older_manifests_have_none(model_dir, tmp_path):
    data = json.loads((model_dir / "manifest.json").read_text())
    assert "objects" not in data and Manifest.from_dict(data).objects == 0
    with_map = Manifest.from_dict(data).replace(objects=21, outputs={})
    assert with_map.outputs["patch_objects"] == {"dtype": "float32", "shape": [1, with_map.G * with_map.G, 21]}
    write_manifest(with_map, tmp_path)
    assert load_manifest(tmp_path)[0].objects == 21
    assert load_manifest(tmp_path)[0].absent_below is None  # the runtime's default
    write_manifest(with_map.replace(absent_below=0.1), tmp_path)
    assert load_manifest(tmp_path)[0].absent_below == 0.1
    data["outputs"]["patch_objects"] = with_map.outputs["patch_objects"]  # declared without "objects"
    with pytest.raises(ContractMismatch, match=r"'outputs.patch_objects' is not part of the model contract"):
        Manifest.from_dict(data, "m.json")


def test_verify_accepts_a_matching_model(model_dir):
    manifest, onnx_path = load_manifest(model_dir)
    verify(manifest, onnx_path, registry)


def test_unknown_primitive_is_refused_by_name(model_dir):
    manifest, onnx_path = load_manifest(model_dir)
    bad = manifest.replace(primitives=(*PRIMITIVES[:2], PrimitiveSpec("wave", ("at", "to"))))
    with pytest.raises(ContractMismatch) as err:
        verify(bad, onnx_path, registry)
    msg = str(err.value)
    assert "'wave'" in msg and "registry lacks" in msg and "pick" in msg and "manifest.json" in msg


def test_robot_config_without_a_primitive_refuses_the_model(model_dir):
    manifest, onnx_path = load_manifest(model_dir)
    with pytest.raises(ContractMismatch, match=r"'push'.*registry lacks"):
        verify(manifest, onnx_path, registry.subset(["pick", "place", "home"]))


def test_wrong_argument_names_are_refused(model_dir):
    manifest, onnx_path = load_manifest(model_dir)
    bad = manifest.replace(primitives=(PrimitiveSpec("pick", ("where",)), *PRIMITIVES[1:]))
    with pytest.raises(ContractMismatch) as err:
        verify(bad, onnx_path, registry)
    assert "pick(where)" in str(err.value) and "takes (at)" in str(err.value)


def test_a_changed_file_fails_the_hash_check(fresh):
    model = build_model(verb_gain=9.0)
    onnx.save(model, fresh / "planner.onnx")
    manifest, onnx_path = load_manifest(fresh)
    with pytest.raises(ContractMismatch) as err:
        verify(manifest, onnx_path, registry)
    msg = str(err.value)
    assert "sha256" in msg and str(onnx_path) in msg and manifest.sha256[:16] in msg


def test_a_missing_file_is_named(fresh):
    (fresh / "planner.onnx").unlink()
    manifest, onnx_path = load_manifest(fresh)
    with pytest.raises(ContractMismatch, match="planner.onnx: model file missing"):
        verify(manifest, onnx_path, registry)


def test_a_missing_manifest_is_named(tmp_path):
    with pytest.raises(ModelError, match=r"manifest.json: no manifest"):
        load_manifest(tmp_path)


def test_graph_shapes_must_match_the_manifest(fresh):
    manifest, onnx_path = load_manifest(fresh)
    # A self-consistent manifest for K=4 slots, beside a graph that has 3.
    bad = manifest.replace(K=4, inputs={}, outputs={})
    with pytest.raises(ContractMismatch) as err:
        verify(bad, onnx_path, registry)
    assert "'prim_logits' is float32[1, 3, 4]" in str(err.value) and "[1, 4, 4]" in str(err.value)


def test_a_dynamic_batch_is_refused(fresh):
    model = build_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(model, fresh / "planner.onnx")
    manifest, onnx_path = load_manifest(fresh)
    manifest = manifest.replace(sha256=file_sha256(onnx_path))
    with pytest.raises(ContractMismatch, match=r"input 'image' is uint8\['batch', 32, 32, 3\].*static shapes"):
        verify_file(manifest, onnx_path)


def test_declared_io_must_agree_with_the_sizes(model_dir):
    data = json.loads((model_dir / "manifest.json").read_text())
    data["outputs"]["prim_logits"]["shape"] = [1, 9, 4]
    with pytest.raises(ContractMismatch, match=r"field 'outputs.prim_logits'"):
        Manifest.from_dict(data, "m.json")


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("sha256"), "'sha256' is missing"),
    (lambda d: d.update(colour="red"), "'colour' is not a manifest field"),
    (lambda d: d.update(vocab=["a", "b"]), "'vocab'"),
    (lambda d: d.update(S=0), "'S' must be an integer >= 1"),
    (lambda d: d.update(G=5), "'G' (5) must divide S"),
    (lambda d: d.update(precision="int4"), "'precision' must be one of fp32, int8"),
    (lambda d: d.update(sha256="abc"), "'sha256' must be 64"),
    (lambda d: d["primitives"].append({"name": "sweep", "args": ["a", "b", "c"]}), "3 point arguments but A is 2"),
    (lambda d: d.update(format=2), "format 2 is not supported"),
    (lambda d: d.update(view={"kind": "fisheye"}), "'view' is not a view: view kind 'fisheye' is not one of camera, table"),
    (lambda d: d.update(view={"kind": "table", "half_extent_m": "0.3"}), "view half_extent_m must be a number"),
    (lambda d: d.update(view={"kind": "table", "zoom": 2}), "unknown key 'zoom'"),
    (lambda d: d.update(absent_below=0.05), "'absent_below' needs the patch_objects output, and the graph has none"),
    (lambda d: d.update(objects=21, outputs={}, absent_below=1.0), "'absent_below' must be a probability in [0, 1)"),
])
def test_malformed_manifests_name_the_field(model_dir, tmp_path, change, field):
    data = json.loads((model_dir / "manifest.json").read_text())
    change(data)
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ContractMismatch) as err:
        load_manifest(tmp_path)
    assert field in str(err.value) and str(tmp_path / "manifest.json") in str(err.value)


def test_primitive_with_non_point_arguments_cannot_be_planned(model_dir):
    reg = Registry()

    @reg.primitive
    def pick(arm, at: TablePoint, force_n: Annotated[float, Range(0.0, 10.0)]) -> None:
        """Pick with a force."""

    manifest, onnx_path = load_manifest(model_dir)
    bad = manifest.replace(primitives=(PrimitiveSpec("pick", ("at", "force_n")),))
    with pytest.raises(ContractMismatch, match="non-point argument"):
        verify(bad, onnx_path, reg)


def test_garbage_onnx_with_a_matching_hash_is_a_model_error(fresh):
    (fresh / "planner.onnx").write_bytes(b"not a protobuf")
    manifest, onnx_path = load_manifest(fresh)
    manifest = manifest.replace(sha256=file_sha256(onnx_path))
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        verify_file(manifest, onnx_path)

