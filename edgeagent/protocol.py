"""Wire protocol v1 (DESIGN §7): framing, limits, validation, encode/decode helpers.

A message is one ZeroMQ multipart message of one or two frames:

    frame 0  UTF-8 JSON object, the header: {"v": 1, "id": "<request id>", "type": "plan", ...}
    frame 1  optional: one encoded image (JPEG or PNG), for ``plan``

Every request gets exactly one reply with the same ``id``: ``{"v": 1, "id": ..., "ok": true, ...}`` or
``{"v": 1, "id": ..., "ok": false, "error": {"code": ..., "message": ...}}``. Nothing is ever pickled;
every size is bounded before anything is allocated for it (the image's pixel count is read from its
JPEG/PNG header before decoding). ``docs/protocol.md`` is the reference for other languages.
"""

from __future__ import annotations

import json
import math
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgeagent.errors import ProtocolError

VERSION = 1

# -- limits (docs/protocol.md "Limits") ---------------------------------------------------------------
#: Largest header frame, bytes.
MAX_HEADER_BYTES = 64 * 1024
#: Largest image frame, bytes.
MAX_IMAGE_BYTES = 8 * 1024 * 1024
#: Largest decoded image: each side and the pixel count (3840 x 2160 fits).
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 4096 * 2304
#: Longest instruction, characters.
MAX_INSTRUCTION_CHARS = 1000
#: Longest request id, characters.
MAX_ID_CHARS = 128
#: Longest deadline a request may ask for, milliseconds.
MAX_DEADLINE_MS = 60_000.0
#: Frames larger than this are dropped by ZeroMQ itself, which disconnects the sender (ZMQ_MAXMSGSIZE);
#: frames between the protocol limits and this get an error reply.
MAX_FRAME_BYTES = 2 * MAX_IMAGE_BYTES

# -- error codes (docs/protocol.md "Errors") ---------------------------------------------------------
ERROR_CODES = {
    "bad_frames": "the message has no frames or more than two",
    "header_too_large": f"the header frame is larger than {MAX_HEADER_BYTES} bytes",
    "bad_json": "the header frame is not UTF-8 JSON",
    "bad_header": "the header is not a JSON object",
    "bad_version": f"the header's 'v' is missing or not {VERSION}",
    "missing_id": f"the header's 'id' is missing, not a string, empty or longer than {MAX_ID_CHARS} characters",
    "unknown_type": "the header's 'type' names no request this server answers",
    "bad_request": "a field of the request is missing, has the wrong type or is out of range",
    "unexpected_image": "an image frame came with a request that takes none",
    "image_too_large": "the image frame or its decoded size exceeds the limits",
    "bad_image": "the image frame is not a decodable JPEG or PNG",
    "busy": "the server is at capacity (request queue full, or a run is already active)",
    "not_found": "the task id is unknown",
    "planner_error": "the planner failed on this request",
    "robot_error": "the robot backend failed",
    "reload_failed": "the new model could not be loaded; the old one keeps serving",
    "deadline_expired": "the request's deadline passed before it could be served",
    "internal": "an unexpected server error (a bug: please report it with the message)",
}

#: Image formats accepted in frame 1, by magic bytes.
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


# -- request schemas -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One header field of a request type: its JSON kind, whether it is required, and its bounds."""

    # "str", "number", "int", "object" or "str|null"
    kind: str
    required: bool = False
    # Inclusive bounds: characters for strings, value for numbers.
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class RequestSpec:
    """The fields a request type takes and whether it may carry an image frame."""

    fields: Mapping[str, Field] = field(default_factory=dict)
    image: bool = False


_INSTRUCTION = Field("str", True, 1, MAX_INSTRUCTION_CHARS)
_DEADLINE = Field("number", False, 1.0, MAX_DEADLINE_MS)

#: Requests of the robot service (``edgeagent serve``).
SERVICE_REQUESTS: dict[str, RequestSpec] = {
    "ping": RequestSpec(),
    "health": RequestSpec(),
    "primitives": RequestSpec(),
    "plan": RequestSpec({"instruction": _INSTRUCTION, "deadline_ms": _DEADLINE, "camera": Field("object"),
                         "holding": Field("str|null", False, 0, 100)}, image=True),
    "run": RequestSpec({"instruction": _INSTRUCTION, "deadline_ms": _DEADLINE,
                        "max_steps": Field("int", False, 1, 1000)}),
    "status": RequestSpec({"task": Field("str", False, 1, MAX_ID_CHARS), "since": Field("int", False, 0, 2**53)}),
    "cancel": RequestSpec({"task": Field("str", False, 1, MAX_ID_CHARS)}),
    "reload": RequestSpec({"model": Field("str", False, 1, 4096)}),
}

#: Requests of the workstation offload server (``edgeagent offload-server``).
OFFLOAD_REQUESTS: dict[str, RequestSpec] = {
    "ping": RequestSpec(),
    "health": RequestSpec(),
    "plan": RequestSpec({"instruction": _INSTRUCTION, "deadline_ms": _DEADLINE, "camera": Field("object", True),
                         "holding": Field("str|null", False, 0, 100)}, image=True),
}


@dataclass(frozen=True)
class Request:
    """A validated request: its id, type, the whole header and the raw image frame (not yet decoded)."""

    id: str
    type: str
    header: Mapping[str, Any]
    image: bytes | None = None
    # time.monotonic() when it was accepted, for deadlines that count queueing time.
    received: float = field(default_factory=time.monotonic)

    def get(self, name: str, default: Any = None) -> Any:
        return self.header.get(name, default)


# -- JSON -------------------------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused (they are not JSON)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def loads(data: bytes) -> Any:
    """Strict JSON from bytes: UTF-8 only, no NaN/Infinity. Raises ValueError (or RecursionError)."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def new_id() -> str:
    """A fresh request id (random, 32 hex characters)."""
    return uuid.uuid4().hex


# -- encoding ------------------------------------------------------------------------------------------
def encode_request(type: str, id: str | None = None, image: bytes | None = None, *,
                   nulls: Mapping[str, Any] | None = None, **fields: Any) -> list[bytes]:
    """Frames of a request. ``image`` is already-encoded JPEG/PNG bytes (see ``encode_image``).

    Fields whose value is None are left out; ``nulls`` are sent as given, None as JSON null.
    """
    header = {"v": VERSION, "id": id or new_id(), "type": type}
    header.update({k: v for k, v in fields.items() if v is not None})
    header.update(nulls or {})
    frames = [dumps(header)]
    if image is not None:
        frames.append(bytes(image))
    return frames


def encode_reply(id: str | None, **fields: Any) -> list[bytes]:
    """Frames of a success reply."""
    header = {"v": VERSION, "id": id, "ok": True}
    header.update(fields)
    return [dumps(header)]


def encode_error(id: str | None, code: str, message: str) -> list[bytes]:
    """Frames of an error reply; ``code`` is one of ``ERROR_CODES``."""
    return [dumps({"v": VERSION, "id": id, "ok": False, "error": {"code": code, "message": message}})]


def encode_event(topic: str, payload: Mapping[str, Any]) -> list[bytes]:
    """Frames of a PUB event: the topic (for SUB prefix filtering), then the JSON payload."""
    return [topic.encode(), dumps({"v": VERSION, **payload})]


def encode_image(image: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """An H x W x 3 uint8 BGR array as JPEG (default, ``quality`` 1-100) or PNG bytes."""
    import cv2

    if fmt not in ("jpeg", "png"):
        raise ValueError(f"image format must be 'jpeg' or 'png', got {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", image, params)
    if not ok:
        raise ValueError(f"cannot encode a {getattr(image, 'shape', '?')} array as {fmt}")
    return buf.tobytes()


# -- decoding --------------------------------------------------------------------------------------------
def peek_id(frames: Sequence[bytes]) -> str | None:
    """The request id of a message if it can be read at all, else None (so errors can be addressed)."""
    if not frames or len(frames[0]) > MAX_HEADER_BYTES:
        return None
    try:
        header = loads(frames[0])
    except (ValueError, RecursionError):
        return None
    rid = header.get("id") if isinstance(header, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_CHARS else None


def decode_request(frames: Sequence[bytes], specs: Mapping[str, RequestSpec]) -> Request:
    """Validate a request message against ``specs``; raises ProtocolError with a code for the reply.

    Checks, in order: frame count, header size, JSON, object, version, id, type, fields, image frame
    (magic bytes and the declared pixel size; the pixels are decoded later by ``decode_image``).
    Unknown header fields are ignored, so newer clients keep working with older servers.
    """
    if not 1 <= len(frames) <= 2:
        raise ProtocolError("bad_frames", f"a request has 1 or 2 frames (header, optional image), got {len(frames)}")
    raw = frames[0]
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("header_too_large", f"header is {len(raw)} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        header = loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"header is not UTF-8 JSON: {str(exc)[:120]}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_header", f"header must be a JSON object, got {type(header).__name__}")
    if header.get("v") != VERSION or isinstance(header.get("v"), bool):
        raise ProtocolError("bad_version", f"header 'v' must be {VERSION}, got {_short(header.get('v'))}")
    rid = header.get("id")
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID_CHARS:
        raise ProtocolError("missing_id", f"header 'id' must be a non-empty string of at most {MAX_ID_CHARS} "
                                          f"characters, got {_short(rid)}")
    rtype = header.get("type")
    spec = specs.get(rtype) if isinstance(rtype, str) else None
    if spec is None:
        raise ProtocolError("unknown_type", f"request {rid}: unknown type {_short(rtype)}; "
                                            f"this server answers {', '.join(sorted(specs))}")
    for name, f in spec.fields.items():
        _check_field(rid, rtype, name, f, header.get(name, _MISSING))
    image = frames[1] if len(frames) == 2 else None
    if image is not None:
        if not spec.image:
            raise ProtocolError("unexpected_image", f"request {rid}: '{rtype}' takes no image frame; send the "
                                                    "header alone")
        check_image_frame(image, rid)
    return Request(rid, rtype, header, image)


_MISSING = object()

_KINDS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "str|null": lambda v: v is None or isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
}


def _check_field(rid: str, rtype: str, name: str, f: Field, value: Any) -> None:
    where = f"request {rid} ({rtype}): field '{name}'"
    if value is _MISSING:
        if f.required:
            raise ProtocolError("bad_request", f"{where} is required")
        return
    if not _KINDS[f.kind](value):
        raise ProtocolError("bad_request", f"{where} must be {f.kind.replace('|', ' or ')}, got {_short(value)}")
    size = len(value) if isinstance(value, str) else value
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        if (f.lo is not None and size < f.lo) or (f.hi is not None and size > f.hi):
            unit = " characters" if isinstance(value, str) else ""
            raise ProtocolError("bad_request", f"{where} must be within [{f.lo:g}, {f.hi:g}]{unit}, got "
                                               f"{size if isinstance(value, str) else _short(value)}")


def check_image_frame(data: bytes, rid: str = "?") -> tuple[str, int, int]:
    """Format and size of an image frame, read from its header bytes; raises ProtocolError beyond limits."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ProtocolError("image_too_large", f"request {rid}: image frame is {len(data)} bytes; the limit is "
                                               f"{MAX_IMAGE_BYTES}")
    size = image_size(data)
    if size is None:
        raise ProtocolError("bad_image", f"request {rid}: image frame is not a JPEG or PNG (or its header is "
                                         "truncated); encode frames with cv2.imencode('.jpg' or '.png')")
    fmt, w, h = size
    if w < 1 or h < 1:
        raise ProtocolError("bad_image", f"request {rid}: the {fmt} header declares an empty {w} x {h} image")
    if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE or w * h > MAX_IMAGE_PIXELS:
        raise ProtocolError("image_too_large", f"request {rid}: image is {w} x {h}; the limits are "
                                               f"{MAX_IMAGE_SIDE} per side and {MAX_IMAGE_PIXELS} pixels")
    return fmt, w, h


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from a PNG's IHDR or a JPEG's SOF marker, without decoding; None if neither."""
    if data[:8] == _PNG_MAGIC:
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:3] == _JPEG_MAGIC:
        return _jpeg_size(data)
    return None


#: JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8 and CC are not frames.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # standalone markers
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if length < 2:
            return None
        if marker in _SOF:
            if i + 9 > n or length < 8:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return "jpeg", w, h
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        i += 2 + length
    return None


#: JPEG decode-time downscaling (in the DCT, nearly free): factor -> cv2 flag.
_REDUCED = ((8, "IMREAD_REDUCED_COLOR_8"), (4, "IMREAD_REDUCED_COLOR_4"), (2, "IMREAD_REDUCED_COLOR_2"))


def decode_image(data: bytes, rid: str = "?", *, at_least: int | None = None) -> np.ndarray:
    """An image frame -> H x W x 3 uint8 BGR, after ``check_image_frame``; raises ProtocolError.

    With ``at_least``, a JPEG is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling: a box
    average, much cheaper than a full decode and a later resize) as long as both sides stay at least
    ``at_least`` pixels; the caller rescales its camera model to the image it gets. PNGs decode whole.
    """
    import cv2

    fmt, w, h = check_image_frame(data, rid)
    flag, f = cv2.IMREAD_COLOR, 1
    if at_least and fmt == "jpeg":
        for factor, name in _REDUCED:
            if min(w, h) // factor >= at_least:
                flag, f = getattr(cv2, name), factor
                break
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None or image.shape[:2] != (-(-h // f), -(-w // f)):
        raise ProtocolError("bad_image", f"request {rid}: the {fmt} image ({w} x {h} by its header) cannot be "
                                         "decoded; it is corrupt or truncated")
    return image


def decode_camera(value: Any, rid: str = "?"):
    """A request's ``camera`` field -> CameraModel; ProtocolError ``bad_request`` unless every part is sound."""
    from edgeagent.camera import CameraModel

    where = f"request {rid} (plan): field 'camera'"
    if not isinstance(value, dict):
        raise ProtocolError("bad_request", f"{where} must be an object with width, height, K, R, t")
    try:
        shapes = {k: np.asarray(value[k], dtype=float).shape for k in ("K", "R", "t")}
        w, h = value["width"], value["height"]
    except KeyError as exc:
        raise ProtocolError("bad_request", f"{where} lacks {exc.args[0]!r}; it needs width, height, K, R, t") from None
    except (TypeError, ValueError) as exc:
        raise ProtocolError("bad_request", f"{where}: K, R and t must be arrays of numbers ({exc})") from None
    if shapes != {"K": (3, 3), "R": (3, 3), "t": (3,)}:
        raise ProtocolError("bad_request", f"{where}: K and R must be 3 x 3 and t 3 numbers, got shapes "
                                           f"{', '.join(f'{k} {v}' for k, v in shapes.items())}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_IMAGE_SIDE for v in (w, h)):
        raise ProtocolError("bad_request", f"{where}: width and height must be integers in [1, {MAX_IMAGE_SIDE}]")
    camera = CameraModel.from_dict(value)
    if not all(math.isfinite(x) for row in (*camera.K, *camera.R, camera.t) for x in row):
        raise ProtocolError("bad_request", f"{where}: K, R and t must be finite")
    return camera


def decode_reply(frames: Sequence[bytes]) -> dict[str, Any]:
    """A reply header as a dict; raises ProtocolError when it is not a well-formed v1 reply."""
    if len(frames) != 1:
        raise ProtocolError("bad_frames", f"a reply has exactly 1 frame, got {len(frames)}")
    if len(frames[0]) > MAX_FRAME_BYTES:
        raise ProtocolError("header_too_large", f"reply is {len(frames[0])} bytes")
    try:
        reply = loads(frames[0])
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"reply is not UTF-8 JSON: {str(exc)[:120]}") from None
    if not isinstance(reply, dict) or reply.get("v") != VERSION or not isinstance(reply.get("ok"), bool):
        raise ProtocolError("bad_header", f"reply must be a JSON object with v={VERSION} and a boolean 'ok', "
                                          f"got {_short(reply)}")
    if not reply["ok"]:
        err = reply.get("error")
        if not (isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)):
            raise ProtocolError("bad_header", f"error reply needs error.code and error.message strings, "
                                              f"got {_short(err)}")
    return reply


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
