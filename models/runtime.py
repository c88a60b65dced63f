"""The local planner: a shipped ONNX model behind the ``Planner`` protocol.

``ModelPlanner`` loads a model folder (``planner.onnx`` + ``manifest.json``), refuses it when the
manifest disagrees with the registry or the file (``manifest.verify``), runs it on the best available
engine and turns its outputs into validated calls. Pre- and post-processing live here once:
``model_input`` and ``decode`` are plain functions that every engine (onnxruntime, TensorRT)
shares, so the two cannot drift apart.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from edgeagent.camera import CameraModel
from edgeagent.errors import CallError, InstructionError, ModelError
from edgeagent.models.clauses import Compound, home_call
from edgeagent.models.dataset import object_class  # the classes of patch_objects are the training labels
from edgeagent.models.manifest import END, Manifest, load_manifest, model_paths, verify
from edgeagent.models.retry import AFTER, NEAR, FailedPicks, PutBacks, same_spot
from edgeagent.sim.world import COLORS
from edgeagent.types import UNKNOWN, Call, Observation, Plan

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent / "shipped"
#: How many distinct instructions keep their token ids cached (a closed loop repeats one instruction).
_TOKEN_CACHE = 64
#: How many camera models a table-view planner remembers having checked (a robot has one or two).
_CAMERA_CACHE = 8
#: A named object that no patch of the model's ``patch_objects`` map shows with at least this
#: probability is not in view, for a manifest that does not give its own ``absent_below``. On v15
#: (whose manifests give this value), every one of 1,222 objects present in held-out first frames
#: scored 0.08 or more, and 99.8% of 3,778 absent ones less (models/README.md, "Instructions it cannot
#: act on").
ABSENT = 0.05


def default_model_dir(precision: str = "int8") -> Path:
    """The model folder shipped inside the package: ``models/shipped/<precision>/``."""
    if precision not in ("int8", "fp32"):
        raise ValueError(f"precision must be 'int8' or 'fp32', got {precision!r}")
    folder = SHIPPED / precision
    manifest_path, onnx_path = model_paths(folder)
    if not (manifest_path.is_file() and onnx_path.is_file()):
        raise ModelError(f"no {precision} planner is shipped at {folder} (need {onnx_path.name} and "
                         f"{manifest_path.name}); train and export one (edgeagent model train / export / quantize, "
                         "see models/README.md) or pass a model folder explicitly")
    return folder


def model_input(image: np.ndarray, camera: CameraModel, manifest: Manifest) -> tuple[np.ndarray, CameraModel]:
    """A camera frame (H x W x 3 uint8 BGR, any size) and its camera model -> ``(image, camera_of_image)``:
    the model's ``image`` input, uint8 [1, S, S, 3], in the manifest's view (models/view.py), and the
    camera model through which ``decode`` maps that image's pixels to the table."""
    small, cam = manifest.view.model_input(image, camera, manifest.S)
    return small[None], cam


def decode(outputs: Mapping[str, np.ndarray], manifest: Manifest, camera: CameraModel,
           image_size: tuple[int, int], registry, holding: str | None = UNKNOWN) -> tuple[tuple[Call, ...], bool, float, str]:
    """Model outputs -> ``(calls, done, confidence, notes)``; every returned call passed ``registry.validate``.

    Slot k's primitive is the argmax of ``prim_logits[0, k]``; END (index 0) ends the plan, and END in
    slot 0 means done. Each point argument is the argmax cell of ``point_logits`` plus its sub-cell
    offset, scaled from the S x S model image to the ``image_size`` (W, H) frame and mapped onto the
    table plane through ``camera``. The first slot whose call fails validation ends the plan there;
    when that is slot 0 the plan has no calls, is not done, has confidence 0.0 and ``notes`` says why.
    With ``holding`` known (None: the gripper is empty), slot 0 takes the highest-scoring primitive
    whose preconditions that state meets (no ``place`` with an empty gripper): the robot would refuse
    the other, and the same frame would only ask for it again.
    """
    logits = np.asarray(outputs["prim_logits"])[0]
    choice = logits.argmax(axis=-1)
    if holding != UNKNOWN:
        choice[0] = next(int(i) for i in np.argsort(-logits[0], kind="stable")
                         if i == END or registry.unmet(manifest.primitives[int(i) - 1].name, holding) is None)
    raw = float(np.asarray(outputs["confidence"]).reshape(-1)[0])
    confidence = min(max(raw, 0.0), 1.0) if math.isfinite(raw) else 0.0
    if choice[0] == END:
        return (), True, confidence, ""
    ends = np.flatnonzero(choice == END)
    n = int(ends[0]) if len(ends) else len(choice)
    xy = _slot_points(outputs, manifest, camera, image_size, n)
    calls: list[Call] = []
    notes = ""
    for k in range(n):
        spec = manifest.primitives[int(choice[k]) - 1]
        args = {name: (float(xy[k, a, 0]), float(xy[k, a, 1])) for a, name in enumerate(spec.args)}
        try:
            calls.append(registry.validate(Call(spec.name, args)))
        except CallError as exc:
            notes = f"slot {k} ({spec.name}) rejected: {exc}"
            break
    if not calls:
        # A plan whose first call is invalid says nothing usable: zero confidence sends the router elsewhere.
        return (), False, 0.0, f"no valid call: {notes}"
    return tuple(calls), False, confidence, notes


def _slot_points(outputs: Mapping[str, np.ndarray], manifest: Manifest, camera: CameraModel,
                 image_size: tuple[int, int], n: int) -> np.ndarray:
    """Table points [n, A, 2] of the first ``n`` slots; NaN where a pixel's ray misses the table."""
    cells = np.asarray(outputs["point_logits"])[0, :n].argmax(axis=-1)  # [n, A]
    offsets = np.asarray(outputs["point_offset"])[0, :n]  # [n, A, G*G, 2]
    off = np.take_along_axis(offsets, cells[..., None, None], axis=2)[:, :, 0, :]
    return _cell_points(cells, off, manifest.G, camera, image_size)


def _cell_points(cells: np.ndarray, off: np.ndarray, G: int, camera: CameraModel,
                 image_size: tuple[int, int]) -> np.ndarray:
    """Table points [..., 2] of grid ``cells`` [...] at sub-cell offsets ``off`` [..., 2]; NaN where the
    pixel's ray misses the table."""
    # The graph ends in a sigmoid; clipping only guards against quantisation overshoot. NaN stays NaN.
    off = np.clip(off, 0.0, 1.0)
    rows, cols = np.divmod(cells, G)
    W, H = image_size
    # (col + dx) * S / G is the model-image pixel; * W / S takes it to the frame: the S cancels.
    uv = np.stack([(cols + off[..., 0]) * (W / G), (rows + off[..., 1]) * (H / G)], axis=-1).reshape(-1, 2)
    cam = camera if (camera.width, camera.height) == (W, H) else camera.resized(W, H)
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = cam.pixel_to_table(uv)
        # A ray above the horizon meets the table plane behind the camera: not a point the model meant.
        behind = cam.depth(np.column_stack([xy, np.zeros(len(xy))])) <= 0
    xy[behind] = np.nan
    return xy.reshape(*np.shape(cells), 2)


def next_best_point(outputs: Mapping[str, np.ndarray], manifest: Manifest, camera: CameraModel,
                    image_size: tuple[int, int], registry, avoid: list[tuple[float, float]],
                    near: float, primitive: str = "pick") -> Call | None:
    """Slot 0's ``primitive`` (pick or place, whose one argument is ``at``) moved to the model's best
    other spot: the highest-scoring cell of slot 0's first point argument whose point lies ``near`` (m,
    along an axis) or more from every point in ``avoid`` and validates; None when no cell does."""
    logits = np.asarray(outputs["point_logits"])[0, 0, 0]  # [G*G]
    xy = _cell_points(np.arange(len(logits)), np.asarray(outputs["point_offset"])[0, 0, 0], manifest.G,
                      camera, image_size)
    far = np.isfinite(xy).all(axis=1)
    for p in avoid:
        far &= np.abs(xy - np.asarray(p)).max(axis=1) >= near
    for c in np.argsort(-logits, kind="stable"):
        if not far[c]:
            continue
        try:
            return registry.validate(Call(primitive, {"at": (float(xy[c, 0]), float(xy[c, 1]))}))
        except CallError:
            continue
    return None


def engine_file(onnx_path: Path, engine: str) -> Path:
    """What ``engine`` loads for a model folder: the ONNX file, or ``planner.engine`` beside it for TensorRT."""
    if engine != "tensorrt":
        return onnx_path
    path = onnx_path.with_suffix(".engine")
    if not path.is_file():
        raise ModelError(f"{path}: no TensorRT engine beside {onnx_path.name}; build it on the target board with "
                         f"`edgeagent jetson build-engine {onnx_path} --out {path}`, or use engine 'onnxruntime'")
    return path


_KINDS = {"block": "block", "blocks": "block", "bowl": "bowl", "bowls": "bowl"}
#: Words between a kind and its colour in "the block which is red", "the bowl whose color is blue".
_LINKS = frozenset({"which", "that", "is", "whose", "color"})


def named_objects(words: list[str]) -> list[tuple[str, str | None]]:
    """The ``(colour, "block" | "bowl")`` pairs the tokenizer's ``words`` of an instruction name ("the red
    block", "into the light blue bowl" -> cyan, "the red colored block", "the block which is red"), then
    ``(colour, None)`` for a colour said without its kind ("the red one", "put red in the bowl"): a
    block or a bowl of that colour."""
    out: list[tuple[str, str | None]] = []
    for i, w in enumerate(words):
        kind = _KINDS.get(w)
        if kind is None:
            continue
        k = i - 1 - (i >= 2 and words[i - 1] == "color")  # "the red colored block"
        pairs = [(words[k], kind)] if k >= 0 and words[k] in COLORS else []
        j = i + 1
        while j < len(words) and j <= i + 4 and words[j] in _LINKS:
            j += 1
        if j > i + 1 and j < len(words) and words[j] in COLORS and (j + 1 == len(words) or words[j + 1] not in _KINDS):
            pairs.append((words[j], kind))
        out += [p for p in pairs if p not in out]
    said = {c for c, _ in out}
    return out + [(c, None) for c in dict.fromkeys(w for w in words if w in COLORS) if c not in said]


#: Words an instruction the planner can act on names at least one of (objects, colours, places, arrangements).
GROUNDING = frozenset({*COLORS, "block", "blocks", "bowl", "bowls", "color", "colors", "match", "stack", "stacked",
                       "tower", "line", "corner", "side", "middle", "left", "right", "top", "bottom"})


class ModelPlanner:
    """The local planner: a verified model folder run by one backend. Implements ``Planner``.

    ``model_dir`` is a folder (or its ``planner.onnx``). ``backend`` overrides the engine (anything with
    ``provider`` and ``run(feeds)``); otherwise ``engine`` ("onnxruntime" or "tensorrt", see
    ``jetson.backends.ENGINES``) builds one, and ``provider_config`` (a ``jetson.providers.ProviderConfig``)
    orders onnxruntime's providers (TensorRT -> CUDA -> CPU by default). ``remember_failures`` (default on)
    moves a pick the executor reported failed twice at one spot, and a place that would put the block
    just taken up back where it was, to the model's next-best spot (models/retry.py); off, every plan
    comes from the frame alone. ``absent_below`` (default: the manifest's, else ``ABSENT``; 0 turns it
    off) refuses, on the first plan of a task an executor runs, an instruction naming a block or bowl
    that the model's ``patch_objects`` map scores below it everywhere in the frame (models with that
    output only).
    """

    def __init__(self, model_dir, *, backend=None, registry=None, provider_config=None, engine: str = "onnxruntime",
                 remember_failures: bool = True, absent_below: float | None = None):
        from edgeagent.models.tokenizer import Tokenizer

        if registry is None:
            from edgeagent.primitives import registry as standard

            registry = standard
        self.manifest, self.onnx_path = load_manifest(model_dir)
        self.registry = registry
        verify(self.manifest, self.onnx_path, registry)
        if backend is None:
            from edgeagent.jetson.backends import make_backend

            backend = make_backend(engine, engine_file(self.onnx_path, engine), provider_config)
        self.backend = backend
        self.provider: str = backend.provider
        self.tokenizer = Tokenizer(list(self.manifest.vocab), self.manifest.T)
        self.model_id = self.manifest.model_id
        self._tokens: dict[str, np.ndarray] = {}
        self._checked: set[str] = set()
        # Compound instructions, part by part (models/clauses.py).
        self.compound = Compound(home_call(registry))
        # Camera models already checked for the table view.
        self._cameras: set[CameraModel] = set()
        # A task an executor started (``reset``) with no call carried out or failed yet: named objects are
        # checked against the frame only then (later, a block may lie under the one just set on it). A
        # planner no executor runs (a workstation's, ``plan`` requests) cannot tell, and does not check.
        self._first = False
        if absent_below is None:
            absent_below = ABSENT if self.manifest.absent_below is None else self.manifest.absent_below
        self.absent_below = float(absent_below)
        # Picks that failed in the current task, so a missed grasp is not repeated forever (models/retry.py).
        self.failed_picks = FailedPicks() if remember_failures else None
        # The last place and pick the robot carried out, so a block is not put back where it was.
        self.put_backs = PutBacks() if remember_failures else None
        # The spots the last plan moved a pick away from (it resets their count: ``gets_nowhere`` still
        # knows them, for a workstation's plan that proposes one).
        self._moved_from: list = []
        log.info("planner %s (%s, %d cycles) runs on %s", self.model_id, self.manifest.precision,
                 self.manifest.cycles, self.provider)

    def tokens(self, instruction: str) -> np.ndarray:
        """The model's ``tokens`` input, int64 [1, T], cached per instruction."""
        ids = self._tokens.get(instruction)
        if ids is None:
            if len(self._tokens) >= _TOKEN_CACHE:
                self._tokens.clear()
            ids = self.tokenizer.encode(instruction)[None]
            ids.flags.writeable = False
            self._tokens[instruction] = ids
        return ids

    def check(self, instruction: str) -> None:
        """Raise ``InstructionError`` when ``instruction`` names nothing the model could act on: no
        block, bowl, colour, place or arrangement it knows ("what is the weather like"). The model
        would move something anyway, and sure of it; a robot should say so instead."""
        if instruction in self._checked:
            return
        words = {self.tokenizer.vocab[i] for i in self.tokenizer.ids(instruction)}
        if not words & GROUNDING:
            raise InstructionError(
                f"instruction {str(instruction)[:120]!r} names no block, bowl, colour or place this planner "
                f"knows; say what to move and where, e.g. 'put the red block in the blue bowl'")
        if len(self._checked) >= _TOKEN_CACHE:
            self._checked.clear()
        self._checked.add(instruction)

    def plan(self, obs: Observation, instruction: str, *, deadline_ms: float | None = None) -> Plan:
        """The calls to make now, or ``done``: one forward pass per task of the instruction.

        A compound instruction ("put the red block in the blue bowl, then the green one on the cyan
        block") is planned part by part, in order, the arm going home between parts
        (``models.clauses.Compound``); ``done`` when the last part is. ``reset()`` starts over at the
        first part. ``deadline_ms`` is accepted for the protocol; a local forward pass is not
        interruptible and the router budgets for it.
        """
        self.check(instruction)
        return self.compound.plan(obs, instruction, self._plan)

    def _plan(self, obs: Observation, instruction: str) -> Plan:
        """One forward pass on one task."""
        t0 = time.perf_counter()
        if self.manifest.view.kind == "table" and obs.camera not in self._cameras:
            self._check_camera(obs.camera)
        image, camera = model_input(obs.image, obs.camera, self.manifest)
        feeds = {"image": image, "tokens": self.tokens(instruction)}
        t1 = time.perf_counter()
        outputs = self.backend.run(feeds)
        t2 = time.perf_counter()
        if self._first and self.absent_below > 0 and "patch_objects" in outputs:
            self._check_in_view(outputs["patch_objects"], instruction)
        S = self.manifest.S
        calls, done, confidence, notes = decode(outputs, self.manifest, camera, (S, S), self.registry, obs.holding)
        if self.failed_picks is not None:
            self._moved_from = []
            calls, notes = self._remembered(outputs, camera, calls, notes)
        t3 = time.perf_counter()
        return Plan(calls, done, confidence, "local", self.model_id, (t3 - t0) * 1e3, notes,
                    {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3})

    def _check_in_view(self, patch_objects, instruction: str) -> None:
        """Raise ``InstructionError`` when ``instruction`` names a "<colour> block" or "<colour> bowl" that
        the model's object map does not show anywhere in the frame (``absent_below``): the model would carry
        the task out on some other object, and sure of it."""
        probs = np.asarray(patch_objects, np.float32).reshape(-1, np.shape(patch_objects)[-1])
        best = probs.max(axis=0)
        words = [self.tokenizer.vocab[i] for i in self.tokenizer.ids(instruction)]
        for color, kind in named_objects(words):
            kinds = (kind,) if kind else ("block", "bowl")
            # A map without the class (fewer classes than the palette) cannot tell: count it present.
            score = max((best[object_class(k, color)] for k in kinds if object_class(k, color) < best.shape[0]),
                        default=1.0)
            if score < self.absent_below:
                what = f"the {color} {kind}" if kind else f"{color} (no {color} block or bowl)"
                raise InstructionError(
                    f"instruction {str(instruction)[:120]!r} names {what}, but the camera does not show one "
                    f"(the model's object map gives it {score:.3f} at most, under {self.absent_below}); check the "
                    "scene, or name an object on the table")

    def _remembered(self, outputs, camera, calls, notes):
        """``(calls, notes)``, with slot 0 moved to the model's next-best spot when what this task
        remembers says the proposed one gets nowhere (models/retry.py): a pick that failed ``AFTER``
        times at this spot, or a place that would put the block just taken up back where it was."""
        if not calls or calls[0].primitive not in ("pick", "place"):
            return calls, notes
        primitive, at = calls[0].primitive, calls[0].args["at"]
        if primitive == "pick":
            marked, avoid = self.failed_picks.avoid(at), self.failed_picks.spots()
            why = f"failed {AFTER} times"
        else:
            marked = avoid = self.put_backs.put_back(at)
            why = "would put the block back where it was just taken from"
        if not marked:
            return calls, notes
        S = self.manifest.S
        other = next_best_point(outputs, self.manifest, camera, (S, S), self.registry, avoid, NEAR, primitive)
        if other is None:
            return calls, notes
        if primitive == "pick":
            self.failed_picks.moved(marked)
            self._moved_from = list(marked)
        new = other.args["at"]
        note = (f"{primitive} at ({at[0]:+.3f}, {at[1]:+.3f}) {why}; trying the model's next-best spot "
                f"({new[0]:+.3f}, {new[1]:+.3f})")
        log.info("%s", note)
        return (other,), note

    def gets_nowhere(self, call: Call) -> str | None:
        """Why ``call``, planned elsewhere (a workstation, a cache), would get nowhere by what this task
        remembers (models/retry.py): a pick at a spot where picks failed ``AFTER`` times, or a place that
        puts the block just taken up back where it was; None when neither. Remembers nothing itself."""
        at = call.args.get("at") if call.primitive in ("pick", "place") else None
        if at is None or self.failed_picks is None:
            return None
        moved_from = any(same_spot(at, p) for p in self._moved_from)
        if call.primitive == "pick" and (self.failed_picks.avoid(at) or moved_from):
            return f"pick at ({at[0]:+.3f}, {at[1]:+.3f}) failed {AFTER} times in this task"
        if call.primitive == "place" and self.put_backs.would_put_back(at):
            return f"place at ({at[0]:+.3f}, {at[1]:+.3f}) would put the block back where it was just taken from"
        return None

    def call_done(self, call: Call) -> None:
        """The robot carried out ``call`` (``Executor.run`` reports it): remember the last place and pick."""
        self._first = False
        if self.put_backs is not None:
            self.put_backs.done(call.primitive, call.args.get("at"))
        self.compound.call_done(call)

    def call_failed(self, call: Call) -> None:
        """The robot could not carry out ``call`` (``Executor.run`` reports it): remember a failed pick."""
        self._first = False
        if self.put_backs is not None:
            self.put_backs.failed()
        if self.failed_picks is not None and call.primitive == "pick":
            self.failed_picks.failed(call.args["at"])

    def reset(self) -> None:
        """Start a new task: forget the failed picks and moves of the last one (``Executor.run`` calls this)."""
        self.compound.reset()
        self._first = True
        self._moved_from = []
        if self.failed_picks is not None:
            self.failed_picks.reset()
        if self.put_backs is not None:
            self.put_backs.reset()

    def _check_camera(self, camera: CameraModel) -> None:
        """Warn, once per camera model, when the table view this model reads would miss part of the workspace."""
        if len(self._cameras) >= _CAMERA_CACHE:
            self._cameras.clear()
        self._cameras.add(camera)
        unseen = self.manifest.view.unseen_corners(camera, self.registry.workspace)
        if unseen:
            log.warning("the camera model does not see workspace corner(s) %s: %s rectifies the table through the "
                        "camera model, so plans there are blind; check the camera's calibration (K, R, t in the "
                        "robot config) and that the camera sees the whole workspace",
                        ", ".join(f"({x:+.2f}, {y:+.2f})" for x, y in unseen), self.model_id)

    def __repr__(self) -> str:
        return f"ModelPlanner({str(self.onnx_path.parent)!r}, model={self.model_id!r}, provider={self.provider!r})"


#: The ONNX planner of the issue: the same class (the engine is a constructor argument).
OnnxPlanner = ModelPlanner
