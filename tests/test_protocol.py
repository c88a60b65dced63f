"""Wire protocol v1: framing, validation codes, image limits, and the document that describes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeagent.errors import ProtocolError
from edgeagent.protocol import (ERROR_CODES, MAX_HEADER_BYTES, MAX_IMAGE_BYTES, OFFLOAD_REQUESTS, SERVICE_REQUESTS,
                                decode_camera, decode_image, decode_reply, decode_request, dumps, encode_error,
                                encode_event, encode_image, encode_reply, encode_request, image_size, loads, peek_id)

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def frame(**header) -> bytes:
    return json.dumps({"v": 1, "id": "r1", **header}).encode()


def code_of(frames, specs=SERVICE_REQUESTS) -> str:
    with pytest.raises(ProtocolError) as err:
        decode_request(frames, specs)
    return err.value.code


def test_request_roundtrip_with_an_image():
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:20, 30:40] = (0, 0, 255)
    frames = encode_request("plan", "abc", encode_image(img, "png"), instruction="pick it", deadline_ms=50)
    req = decode_request(frames, SERVICE_REQUESTS)
    assert (req.id, req.type, req.get("instruction"), req.get("deadline_ms")) == ("abc", "plan", "pick it", 50)
    assert np.array_equal(decode_image(req.image, req.id), img)
    assert json.loads(frames[0]) == {"v": 1, "id": "abc", "type": "plan", "instruction": "pick it", "deadline_ms": 50}


def test_replies_errors_and_events():
    assert decode_reply(encode_reply("x", pong=True)) == {"v": 1, "id": "x", "ok": True, "pong": True}
    err = decode_reply(encode_error("x", "busy", "queue full"))
    assert err["error"] == {"code": "busy", "message": "queue full"} and err["ok"] is False
    topic, payload = encode_event("task/t1", {"kind": "step", "seq": 3})
    assert topic == b"task/t1" and loads(payload) == {"v": 1, "kind": "step", "seq": 3}


@pytest.mark.parametrize("frames, code", [
    ([], "bad_frames"),
    ([frame(type="ping"), b"", b""], "bad_frames"),
    ([b"x" * (MAX_HEADER_BYTES + 1)], "header_too_large"),
    ([b"\xff\xfe"], "bad_json"),
    ([b'{"v": 1, "id": "a", "type": "plan", "deadline_ms": NaN}'], "bad_json"),
    ([b"[1, 2]"], "bad_header"),
    ([json.dumps({"id": "a", "type": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": True, "id": "a", "type": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": 1, "type": "ping"}).encode()], "missing_id"),
    ([json.dumps({"v": 1, "id": 7, "type": "ping"}).encode()], "missing_id"),
    ([json.dumps({"v": 1, "id": "x" * 129, "type": "ping"}).encode()], "missing_id"),
    ([frame(type="teleport")], "unknown_type"),
    ([frame(type=["plan"])], "unknown_type"),
    ([frame(type="plan")], "bad_request"),
    ([frame(type="plan", instruction="")], "bad_request"),
    ([frame(type="plan", instruction="x" * 1001)], "bad_request"),
    ([frame(type="plan", instruction="go", deadline_ms=0)], "bad_request"),
    ([frame(type="plan", instruction="go", deadline_ms=True)], "bad_request"),
    ([frame(type="plan", instruction="go", camera=[1, 2])], "bad_request"),
    ([frame(type="run", instruction="go", max_steps=2.5)], "bad_request"),
    ([frame(type="status", since=-1)], "bad_request"),
    ([frame(type="ping"), b"\xff\xd8\xff"], "unexpected_image"),
    ([frame(type="plan", instruction="go"), b"GIF89a...."], "bad_image"),
    ([frame(type="plan", instruction="go"), b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x00"], "bad_image"),
    ([frame(type="plan", instruction="go"), b"\xff\xd8\xff" + b"\0" * (MAX_IMAGE_BYTES)], "image_too_large"),
])
def test_each_defect_has_its_code(frames, code):
    assert code in ERROR_CODES
    assert code_of(frames) == code


def test_messages_name_the_request_and_field():
    with pytest.raises(ProtocolError, match=r"request r1 \(run\): field 'max_steps' must be within \[1, 1000\]"):
        decode_request([frame(type="run", instruction="go", max_steps=0)], SERVICE_REQUESTS)
    with pytest.raises(ProtocolError, match="this server answers health, ping, plan"):
        decode_request([frame(type="run", instruction="go")], OFFLOAD_REQUESTS)


def test_unknown_fields_are_ignored_for_forward_compatibility():
    req = decode_request([frame(type="ping", trace="abc", future={"x": 1})], SERVICE_REQUESTS)
    assert req.type == "ping"


def png_with_size(w: int, h: int) -> bytes:
    return encode_image(np.zeros((h, w, 3), np.uint8), "png")


def test_image_size_is_read_from_headers_without_decoding():
    img = np.zeros((30, 50, 3), np.uint8)
    assert image_size(encode_image(img, "png")) == ("png", 50, 30)
    assert image_size(encode_image(img, "jpeg")) == ("jpeg", 50, 30)
    ok, progressive = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert image_size(progressive.tobytes()) == ("jpeg", 50, 30)
    assert image_size(b"\xff\xd8\xff\xe0\x00") is None  # truncated
    assert image_size(b"BM....") is None


def test_decompression_bombs_are_refused_before_decoding():
    bomb = bytearray(png_with_size(8, 8))
    bomb[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR claims 10^10 pixels
    assert code_of([frame(type="plan", instruction="go"), bytes(bomb)]) == "image_too_large"


def test_a_truncated_image_with_a_good_header_is_bad_image():
    data = encode_image(np.full((40, 40, 3), 100, np.uint8), "jpeg")
    with pytest.raises(ProtocolError) as err:
        decode_image(data[: len(data) // 3], "r9")
    assert err.value.code == "bad_image" and "r9" in str(err.value)


def test_peek_id_and_strict_json():
    assert peek_id([frame(type="x")]) == "r1"
    assert peek_id([b"garbage"]) is None and peek_id([]) is None
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})
    with pytest.raises(ValueError):
        loads(b'{"x": Infinity}')


@pytest.mark.parametrize("frames", [[b"{}"], [dumps({"v": 1, "ok": "yes"})], [dumps({"v": 1, "ok": False})],
                                    [dumps({"v": 1, "ok": True}), b"x"]])
def test_malformed_replies_are_protocol_errors(frames):
    with pytest.raises(ProtocolError):
        decode_reply(frames)


def test_the_document_covers_every_request_and_error_code():
    text = DOC.read_text()
    for code in ERROR_CODES:
        assert f"`{code}`" in text, f"docs/protocol.md lacks error code {code}"
    for rtype in set(SERVICE_REQUESTS) | set(OFFLOAD_REQUESTS):
        assert re.search(rf"^#+ .*`{rtype}`", text, re.MULTILINE), f"docs/protocol.md lacks a section on {rtype}"
    for limit in ("65536", "8388608", "4096", "9437184", "1000"):
        assert limit in text


GOOD_CAMERA = {"width": 640, "height": 480, "K": [[400, 0, 320], [0, 400, 240], [0, 0, 1]],
               "R": [[1, 0, 0], [0, -1, 0], [0, 0, -1]], "t": [0, 0, 0.7]}


@pytest.mark.parametrize("change, words", [
    ({"K": [[1, 2], [3, 4]]}, "K and R must be 3 x 3"),
    ({"t": [0, 0]}, "t 3 numbers"),
    ({"R": "identity"}, "arrays of numbers"),
    ({"width": 0}, "width and height must be integers"),
    ({"height": 480.5}, "width and height must be integers"),
    ({"t": [0, 0, float("inf")]}, "must be finite"),
    ({"K": None}, "K and R must be 3 x 3"),
])
def test_camera_models_are_checked_part_by_part(change, words):
    with pytest.raises(ProtocolError, match=words) as err:
        decode_camera({**GOOD_CAMERA, **change}, "r5")
    assert err.value.code == "bad_request" and "request r5" in str(err.value)
    with pytest.raises(ProtocolError, match="lacks 'R'"):
        decode_camera({k: v for k, v in GOOD_CAMERA.items() if k != "R"})
    assert decode_camera(GOOD_CAMERA).width == 640


def test_decode_image_reduces_large_jpegs_only_as_far_as_asked_and_never_pngs():
    import cv2

    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    png = cv2.imencode(".png", frame)[1].tobytes()
    assert decode_image(jpeg, "r").shape == (480, 640, 3)
    assert decode_image(jpeg, "r", at_least=192).shape == (240, 320, 3)   # /4 would leave 120 < 192
    assert decode_image(jpeg, "r", at_least=60).shape == (60, 80, 3)      # /8
    assert decode_image(jpeg, "r", at_least=481).shape == (480, 640, 3)   # too small to reduce
    assert decode_image(png, "r", at_least=60).shape == (480, 640, 3)
    odd = cv2.imencode(".jpg", frame[:479, :641 - 2])[1].tobytes()
    assert decode_image(odd, "r", at_least=100).shape == (120, 160, 3)    # sizes round up
