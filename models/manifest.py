"""The manifest of a planner model: ``manifest.json`` beside ``planner.onnx`` (the model contract).

A model folder holds the ONNX graph and a manifest that records everything the runtime needs to use
it (image side S, token count T, plan slots K, patch grid G, point arguments A, the vocabulary and the
primitive table in output order) plus where it came from (training command, data, eval figures) and
the sha256 of the graph. ``verify`` refuses a model whose manifest disagrees with the registry, with
its file or with the graph's input/output shapes, and says which part disagrees and what to do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from edgeagent.errors import ContractMismatch, ModelError
from edgeagent.files import write_atomic
from edgeagent.models.view import View

FORMAT = 1
MANIFEST_NAME = "manifest.json"
ONNX_NAME = "planner.onnx"
PRECISIONS = ("fp32", "int8")
#: Names of the graph's inputs and outputs, in contract order.
INPUT_NAMES = ("image", "tokens")
OUTPUT_NAMES = ("prim_logits", "point_logits", "point_offset", "confidence")
#: Index of END in ``prim_logits``' last axis; primitive i of the manifest is index i + 1.
END = 0
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class PrimitiveSpec:
    """One row of the primitive table: the name and its point arguments in output order."""

    name: str
    args: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "args": list(self.args)}


def io_spec(S: int, T: int, K: int, G: int, A: int, P: int, objects: int = 0) -> tuple[dict, dict]:
    """The contract's ``(inputs, outputs)``: ``{name: {"dtype": str, "shape": [int, ...]}}``.

    ``P`` counts END, so it is ``1 + len(primitives)``. ``objects`` > 0 adds the optional output
    ``patch_objects`` [1, G*G, objects]: per patch, the probability of each object class it shows (0 none,
    then the blocks, then the bowls, palette order), which the runtime uses to tell a named object absent.
    """
    inputs = {"image": {"dtype": "uint8", "shape": [1, S, S, 3]},
              "tokens": {"dtype": "int64", "shape": [1, T]}}
    outputs = {"prim_logits": {"dtype": "float32", "shape": [1, K, P]},
               "point_logits": {"dtype": "float32", "shape": [1, K, A, G * G]},
               "point_offset": {"dtype": "float32", "shape": [1, K, A, G * G, 2]},
               "confidence": {"dtype": "float32", "shape": [1, 1]}}
    if objects:
        outputs["patch_objects"] = {"dtype": "float32", "shape": [1, G * G, objects]}
    return inputs, outputs


def now_iso() -> str:
    """Current UTC time as an ISO 8601 string (seconds), the manifest's ``created`` format."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` as a value. ``inputs``/``outputs`` default to the contract's for the sizes."""

    # Model name, e.g. "edgeagent-planner".
    name: str
    # Image side (pixels), token count, plan slots, patch grid side, point arguments per slot.
    S: int
    T: int
    K: int
    G: int
    A: int
    # Words in id order; vocab[0] == "<pad>", vocab[1] == "<unk>".
    vocab: tuple[str, ...]
    # The primitive table the model was trained for; output index i + 1 is primitives[i].
    primitives: tuple[PrimitiveSpec, ...]
    # "fp32" or "int8".
    precision: str
    # Hex sha256 of planner.onnx.
    sha256: str
    # Refinement cycles baked into this export.
    cycles: int = 1
    # ISO 8601 time the file was written.
    created: str = field(default_factory=now_iso)
    # Default routing threshold on the plan's confidence.
    confidence_threshold: float = 0.5
    # Graph I/O: {name: {"dtype", "shape"}}; empty means "the contract's for these sizes".
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    # How it was trained: {"command", "wall_time_s", "data", "seed", ...}.
    training: Mapping[str, Any] = field(default_factory=dict)
    # Measured figures (success per family, latency, ...).
    eval: Mapping[str, Any] = field(default_factory=dict)
    # How a camera frame becomes the ``image`` input (models/view.py); files without one: the camera view.
    view: View = field(default_factory=View)
    # Object classes of the optional ``patch_objects`` output; 0: the graph has none (files before it).
    objects: int = 0
    # A named object no patch of ``patch_objects`` shows with at least this probability is absent (the
    # runtime refuses the instruction); picked per model on its own map. None: the runtime's default.
    absent_below: float | None = None
    format: int = FORMAT

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs:
            inputs, outputs = io_spec(self.S, self.T, self.K, self.G, self.A, self.P, self.objects)
            object.__setattr__(self, "inputs", dict(self.inputs) or inputs)
            object.__setattr__(self, "outputs", dict(self.outputs) or outputs)

    @property
    def P(self) -> int:
        """Primitive classes including END."""
        return 1 + len(self.primitives)

    @property
    def model_id(self) -> str:
        """``name@shorthash``, what plans record as their ``model``."""
        return f"{self.name}@{self.sha256[:8]}"

    def expected_io(self) -> tuple[dict, dict]:
        """The contract's inputs/outputs for this manifest's sizes."""
        return io_spec(self.S, self.T, self.K, self.G, self.A, self.P, self.objects)

    def replace(self, **changes: Any) -> "Manifest":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "name": self.name, "created": self.created, "S": self.S, "T": self.T,
                "K": self.K, "G": self.G, "A": self.A, "cycles": self.cycles, "vocab": list(self.vocab),
                "primitives": [p.to_dict() for p in self.primitives], "precision": self.precision,
                "sha256": self.sha256, "inputs": _plain(self.inputs), "outputs": _plain(self.outputs),
                "confidence_threshold": self.confidence_threshold, "view": self.view.to_dict(),
                "training": _plain(self.training), "eval": _plain(self.eval),
                **({"objects": self.objects} if self.objects else {}),
                **({"absent_below": self.absent_below} if self.absent_below is not None else {})}

    @staticmethod
    def from_dict(d: Any, where: str = "manifest") -> "Manifest":
        """Parse and check a manifest mapping; errors name ``where`` and the field."""
        return _parse(d, where)


def _plain(value: Any) -> Any:
    """A JSON-ready deep copy (mappings -> dicts, tuples -> lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- parsing ------------------------------------------------------------------------------------------
_REQUIRED = ("format", "name", "S", "T", "K", "G", "A", "vocab", "primitives", "precision", "sha256")
_KNOWN = set(_REQUIRED) | {"created", "cycles", "inputs", "outputs", "confidence_threshold", "view", "training",
                           "eval", "objects", "absent_below"}
_FIX = "re-export the model (edgeagent model export / quantize) so the manifest is written by the tools"


def absent_below_problem(value: Any, objects: bool) -> str | None:
    """What is wrong with ``value`` as a manifest's ``absent_below`` for a graph with (``objects``) or
    without the ``patch_objects`` output; None when nothing is (None is always fine)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        return f"must be a probability in [0, 1), got {value!r:.20}"
    if not objects:
        return "needs the patch_objects output, and the graph has none"
    return None


def _bad(where: str, key: str, what: str) -> ContractMismatch:
    return ContractMismatch(f"{where}: field {key!r} {what}; {_FIX}")


def _int(d: Mapping, key: str, where: str, minimum: int = 1) -> int:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise _bad(where, key, f"must be an integer >= {minimum}, got {v!r:.40}")
    return v


def _parse(d: Any, where: str) -> Manifest:
    if not isinstance(d, Mapping):
        raise ContractMismatch(f"{where}: expected a JSON object, got {type(d).__name__}; {_FIX}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise _bad(where, missing[0], "is missing")
    unknown = sorted(set(d) - _KNOWN)
    if unknown:
        raise _bad(where, unknown[0], f"is not a manifest field (known: {', '.join(sorted(_KNOWN))})")
    if d["format"] != FORMAT:
        raise ContractMismatch(f"{where}: manifest format {d['format']!r} is not supported (this edgeagent "
                               f"reads format {FORMAT}); upgrade edgeagent or re-export the model")
    if not isinstance(d["name"], str) or not d["name"]:
        raise _bad(where, "name", "must be a non-empty string")
    sizes = {k: _int(d, k, where) for k in ("S", "T", "K", "G", "A")}
    if sizes["S"] % sizes["G"]:
        raise _bad(where, "G", f"({sizes['G']}) must divide S ({sizes['S']}) so patches have whole pixels")
    vocab = d["vocab"]
    if (not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab)
            or vocab[:2] != ["<pad>", "<unk>"]):
        raise _bad(where, "vocab", 'must be a list of words starting with "<pad>", "<unk>"')
    if len(set(vocab)) != len(vocab):
        raise _bad(where, "vocab", "has a word more than once")
    prims = []
    for i, p in enumerate(d["primitives"] if isinstance(d["primitives"], list) else [None]):
        if (not isinstance(p, Mapping) or not isinstance(p.get("name"), str) or not isinstance(p.get("args"), list)
                or not all(isinstance(a, str) for a in p["args"])):
            raise _bad(where, f"primitives[{i}]", 'must be {"name": str, "args": [str, ...]}')
        if len(p["args"]) > sizes["A"]:
            raise _bad(where, f"primitives[{i}]", f"({p['name']}) has {len(p['args'])} point arguments but A is "
                       f"{sizes['A']}")
        prims.append(PrimitiveSpec(p["name"], tuple(p["args"])))
    if not prims or len({p.name for p in prims}) != len(prims):
        raise _bad(where, "primitives", "must list at least one primitive, each name once")
    if d["precision"] not in PRECISIONS:
        raise _bad(where, "precision", f"must be one of {', '.join(PRECISIONS)}, got {d['precision']!r:.20}")
    if not isinstance(d["sha256"], str) or not _HEX64.match(d["sha256"]):
        raise _bad(where, "sha256", "must be 64 lowercase hex digits")
    conf = d.get("confidence_threshold", 0.5)
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
        raise _bad(where, "confidence_threshold", f"must be a number in [0, 1], got {conf!r:.20}")
    absent = d.get("absent_below")
    problem = absent_below_problem(absent, bool(d.get("objects")))
    if problem:
        raise _bad(where, "absent_below", problem)
    for key in ("inputs", "outputs", "training", "eval"):
        if not isinstance(d.get(key, {}), Mapping):
            raise _bad(where, key, "must be a JSON object")
    created = d.get("created", "")
    if not isinstance(created, str):
        raise _bad(where, "created", "must be an ISO 8601 string")
    try:
        view = View.from_dict(d.get("view"))
    except ValueError as exc:
        raise _bad(where, "view", f"is not a view: {exc}") from None
    m = Manifest(name=d["name"], **sizes, vocab=tuple(vocab), primitives=tuple(prims), precision=d["precision"],
                 sha256=d["sha256"], cycles=_int(d, "cycles", where) if "cycles" in d else 1, created=created,
                 confidence_threshold=float(conf), inputs=dict(d.get("inputs", {})),
                 outputs=dict(d.get("outputs", {})), training=dict(d.get("training", {})),
                 eval=dict(d.get("eval", {})), view=view,
                 objects=_int(d, "objects", where, minimum=0) if "objects" in d else 0,
                 absent_below=None if absent is None else float(absent))
    _check_declared_io(m, where)
    return m


def _check_declared_io(m: Manifest, where: str) -> None:
    """The manifest's own inputs/outputs must be the contract's for its sizes."""
    for key, declared, expected in zip(("inputs", "outputs"), (m.inputs, m.outputs), m.expected_io()):
        for name, spec in expected.items():
            got = declared.get(name)
            if not isinstance(got, Mapping) or got.get("dtype") != spec["dtype"] or list(got.get("shape", [])) \
                    != spec["shape"]:
                raise _bad(where, f"{key}.{name}", f"is {_plain(got)!r:.80} but S={m.S}, T={m.T}, K={m.K}, "
                           f"G={m.G}, A={m.A} and {len(m.primitives)} primitives give {spec}")
        extra = sorted(set(declared) - set(expected))
        if extra:
            raise _bad(where, f"{key}.{extra[0]}", "is not part of the model contract")


# -- files --------------------------------------------------------------------------------------------
def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(manifest_path, onnx_path)`` for a model folder or for an ``.onnx`` file (manifest beside it)."""
    p = Path(path)
    if p.suffix == ".onnx":
        return p.parent / MANIFEST_NAME, p
    if p.name == MANIFEST_NAME:
        return p, p.parent / ONNX_NAME
    return p / MANIFEST_NAME, p / ONNX_NAME


def load_manifest(path: str | os.PathLike) -> tuple[Manifest, Path]:
    """Read the manifest of a model folder (or of the ``.onnx`` beside it); returns it and the onnx path.

    Raises ModelError when the manifest cannot be read, ContractMismatch when it is malformed.
    Nothing here touches the ONNX file; ``verify`` does.
    """
    manifest_path, onnx_path = model_paths(path)
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{manifest_path}: no manifest; a planner folder holds {ONNX_NAME} and {MANIFEST_NAME} "
                         "(written by edgeagent model export / quantize); check the path") from None
    except OSError as exc:
        raise ModelError(f"{manifest_path}: cannot read the manifest ({exc.strerror})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractMismatch(f"{manifest_path}: not valid JSON ({exc}); {_FIX}") from exc
    return Manifest.from_dict(data, str(manifest_path)), onnx_path


def write_manifest(manifest: Manifest, directory: str | os.PathLike) -> Path:
    """Write ``manifest.json`` into ``directory`` atomically (temp file + rename); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / MANIFEST_NAME
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
    # A reader never sees a half-written manifest.
    write_atomic(target, text)
    return target


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- verification -------------------------------------------------------------------------------------
def verify(manifest: Manifest, onnx_path: str | os.PathLike, registry) -> None:
    """Refuse a model that cannot be used with ``registry``: ContractMismatch saying which part and why.

    Checks, in order: every manifest primitive exists in the registry with the same point arguments
    (``verify_registry``); the file exists, its sha256 matches, its graph I/O matches the manifest
    (``verify_file``).
    """
    verify_registry(manifest, registry, where=str(model_paths(onnx_path)[0]))
    verify_file(manifest, onnx_path)


def verify_registry(manifest: Manifest, registry, where: str = "manifest") -> None:
    """Every primitive of the manifest is registered and takes exactly the manifest's point arguments."""
    for spec in manifest.primitives:
        if spec.name not in registry:
            raise ContractMismatch(
                f"{where}: model {manifest.name!r} was trained for primitive {spec.name!r}, which the registry "
                f"lacks (registered: {', '.join(registry.names()) or 'none'}); enable {spec.name!r} in the robot "
                "config's primitives, or use a model trained for this robot's primitives")
        prim = registry.get(spec.name)
        names = tuple(p.name for p in prim.params)
        if names != spec.args:
            raise ContractMismatch(
                f"{where}: model {manifest.name!r} calls {spec.name}({', '.join(spec.args)}) but the registry's "
                f"{spec.name} takes ({', '.join(names)}); the model was trained for another signature: use a "
                "model trained for this primitive library, or register the primitive with those arguments")
        non_points = [p.name for p in prim.params if p.kind != "point"]
        if non_points:
            raise ContractMismatch(
                f"{where}: the registry's {spec.name} takes non-point argument(s) {', '.join(non_points)}, which "
                "the planner model cannot produce (it predicts table points only); use a registry where "
                f"{spec.name} takes table points only")


def verify_file(manifest: Manifest, onnx_path: str | os.PathLike, io: Mapping[str, tuple] | None = None) -> None:
    """The ONNX file exists, hashes to ``manifest.sha256`` and has the manifest's inputs and outputs.

    ``io`` is ``{name: (dtype, shape)}`` of the graph when the caller already has it; otherwise it is
    read with onnxruntime (graph optimisations off, CPU).
    """
    onnx_path = Path(onnx_path)
    manifest_path = model_paths(onnx_path)[0]
    if not onnx_path.is_file():
        raise ContractMismatch(f"{onnx_path}: model file missing; {manifest_path} describes it. Copy the "
                               f"{ONNX_NAME} of the same export beside the manifest, or re-export")
    digest = file_sha256(onnx_path)
    if digest != manifest.sha256:
        raise ContractMismatch(
            f"{onnx_path}: sha256 {digest[:16]}... differs from {manifest_path} ({manifest.sha256[:16]}...): the "
            "file was changed or the manifest belongs to another export; use the manifest written with this "
            "file (re-run edgeagent model export / quantize)")
    actual = dict(io) if io is not None else graph_io(onnx_path)
    inputs, outputs = manifest.inputs, manifest.outputs
    for kind, declared in (("input", inputs), ("output", outputs)):
        for name, spec in declared.items():
            if name not in actual:
                raise ContractMismatch(f"{onnx_path}: the graph has no {kind} {name!r} that {manifest_path} "
                                       f"declares (graph has {', '.join(actual)}); re-export the model")
            dtype, shape = actual[name]
            if dtype != spec["dtype"] or list(shape) != list(spec["shape"]):
                raise ContractMismatch(
                    f"{onnx_path}: {kind} {name!r} is {dtype}{list(shape)} but {manifest_path} declares "
                    f"{spec['dtype']}{list(spec['shape'])}; the manifest and the file come from different "
                    "exports (or the export has dynamic shapes): re-export both together with static shapes")


_ORT_TYPES = {"tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int32)": "int32", "tensor(int64)": "int64",
              "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(bool)": "bool"}


def graph_io(onnx_path: str | os.PathLike) -> dict[str, tuple[str, list]]:
    """``{name: (dtype, shape)}`` of the graph's inputs and outputs; a dynamic dimension appears as its name."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise ModelError(f"{onnx_path}: onnxruntime cannot load this file ({exc}); re-export the model") from exc
    return {a.name: (_ORT_TYPES.get(a.type, a.type), list(a.shape))
            for a in (*sess.get_inputs(), *sess.get_outputs())}
