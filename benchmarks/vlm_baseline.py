"""Figure 2: the alternative, a small generative VLM writing the plan as JSON text, on the same CPU.

The network has SmolVLM-256M's shape: transformers' Idefics3 architecture (a SigLIP vision tower,
hidden 768, 12 layers, 12 heads, MLP 3072, 512 x 512 images in 16 x 16 patches; pixel shuffle with
scale factor 4, so 1024 patches become 64 image tokens; a Llama-style text model, hidden 576, 30
layers, 9 heads, 3 key/value heads, MLP 1536, vocabulary 49280, its own LM head: 256M parameters). Nothing is
downloaded: the weights are random (what a forward pass costs does not depend on them) and there is no
tokenizer, so the prompt is token ids: one 512 x 512 image (no splitting) as SmolVLM's processor lays
it out, and ``PROMPT_TOKENS`` text tokens. Generation is greedy and produces exactly ``plan_tokens()``
new tokens (``min_new_tokens`` = ``max_new_tokens``, so end-of-sequence cannot stop it early): as many
tokens as one of our plans takes written as JSON. Torch runs with 2 threads.

    python benchmarks/vlm_baseline.py [--quick] [--model DIR]   # = python benchmarks/run.py --only vlm ...
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from typing import Any

from measure import Context, Skip, measure, time_runs

#: A typical two-call plan of ours, as a generative planner would have to write it.
PLAN_JSON = json.dumps([{"primitive": "pick", "args": {"at": [0.12, -0.05]}},
                        {"primitive": "place", "args": {"at": [0.0, 0.1]}}], separators=(",", ":"))
PROMPT_TOKENS = 40
#: SmolVLM's special token ids (SmolLM2 tokenizer): <image>, <fake_token_around_image>, <global-img>.
IMAGE_TOKEN, FAKE_AROUND_IMAGE, GLOBAL_IMAGE = 49190, 49189, 49152
INSTALL = 'pip install -e ".[bench]"'


def plan_tokens(text: str = PLAN_JSON) -> tuple[int, str]:
    """How many tokens ``text`` takes in a SmolLM2-style byte-level BPE, estimated; and how.

    SmolLM2's tokenizer splits every digit apart and pre-tokenises the rest GPT-2 style (words,
    punctuation runs). Each word and each digit counts one token; a punctuation run of L characters
    counts ceil(L / 3) (JSON's ``":"`` and ``","`` are single tokens in such vocabularies, longer runs
    such as ``]}},{"`` are not).
    """
    pieces = re.findall(r"[A-Za-z]+|\d|[^\sA-Za-z\d]+|\s+", text)
    n = sum(1 if p.isalpha() or p.isdigit() else math.ceil(len(p) / 3) for p in pieces)
    how = (f"{len(text)} characters of compact JSON {text}; SmolLM2-style estimate: words and single digits one "
           f"token each, punctuation runs one token per 3 characters = {n} (one per pre-token: {len(pieces)}; "
           f"characters / 3.5: {len(text) / 3.5:.0f})")
    return n, how


def smolvlm_256m_config():
    """An ``Idefics3Config`` with SmolVLM-256M's sizes (from its published config.json)."""
    from transformers import Idefics3Config

    vision = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
              "image_size": 512, "patch_size": 16, "num_channels": 3, "hidden_act": "gelu_pytorch_tanh",
              "layer_norm_eps": 1e-6}
    text = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49280,
            "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    # An untied LM head, as the published config has: 256M parameters. Tied or not, the same matmuls run.
    return Idefics3Config(vision_config=vision, text_config=text, scale_factor=4, image_token_id=IMAGE_TOKEN,
                          tie_word_embeddings=False)


def prompt_ids(image_seq_len: int, seed: int = 0):
    """Token ids: a few text tokens, the image block as SmolVLM lays it out, the rest of the text."""
    import torch

    g = torch.Generator().manual_seed(seed)
    text = torch.randint(100, 49000, (PROMPT_TOKENS,), generator=g).tolist()  # ordinary text ids
    image = [FAKE_AROUND_IMAGE, GLOBAL_IMAGE] + [IMAGE_TOKEN] * image_seq_len + [FAKE_AROUND_IMAGE]
    ids = text[:5] + image + text[5:]
    return torch.tensor([ids], dtype=torch.long)


def pixel_values(size: int = 512):
    """Our simulator frame squeezed to ``size`` x ``size``, RGB, normalised as SmolVLM's processor does."""
    import cv2
    import torch

    from bench_model import scene_observation

    image = cv2.resize(scene_observation().image, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    x = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255.0
    return ((x - 0.5) / 0.5)[None, None]  # [batch 1, 1 image, 3, S, S]


def build():
    """The random-weight model, its inputs and the generation settings."""
    try:
        import torch
        from transformers import Idefics3ForConditionalGeneration
    except ImportError as exc:
        raise Skip(f"the VLM baseline needs torch and transformers ({exc.name} is missing): {INSTALL}") from None
    torch.manual_seed(0)
    torch.set_num_threads(2)
    config = smolvlm_256m_config()
    model = Idefics3ForConditionalGeneration(config).eval()
    vc = config.vision_config
    image_seq_len = (vc.image_size // vc.patch_size) ** 2 // config.scale_factor ** 2
    ids = prompt_ids(image_seq_len)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixel_values(vc.image_size)}
    return model, inputs, image_seq_len


def generate(model, inputs, n: int):
    import torch

    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1,
                             pad_token_id=2, eos_token_id=2)
    return out.shape[1] - inputs["input_ids"].shape[1]


def fig_vlm(ctx: Context) -> dict[str, Any]:
    """A greedy N-token plan from the SmolVLM-256M-shaped model vs one INT8 plan of ours, same process."""
    from bench_model import INSTRUCTION, scene_observation
    from edgeagent.models.runtime import ModelPlanner

    n, how = plan_tokens()
    model, inputs, image_seq_len = build()
    import torch

    params = sum(p.numel() for p in model.parameters())
    got = generate(model, inputs, n)
    if got != n:
        raise RuntimeError(f"generation produced {got} tokens, not {n}")
    reps = 1
    run = "1 generation (one image, one plan)"
    full = time_runs(lambda: generate(model, inputs, n), ctx.runs, reps, warmup=0, scale=1.0)
    first = time_runs(lambda: generate(model, inputs, 1), ctx.runs, reps, warmup=0, scale=1.0)
    per_token = [(f - t) / (n - 1) * 1e3 for f, t in zip(full, first)]
    planner = ModelPlanner(ctx.model("int8"))
    obs = scene_observation()
    ours = time_runs(lambda: planner.plan(obs, INSTRUCTION), ctx.runs, ctx.reps(200, 20))
    ratio = statistics.median(full) * 1e3 / statistics.median(ours)
    rows = [measure(f"VLM plan: {n} tokens greedy (SmolVLM-256M shape, torch eager FP32)", "s", full, run),
            measure("  of which first token (vision tower + prefill)", "s", first, "1 generation of 1 token"),
            measure("  decode, per further token", "ms", per_token, "(whole - first token) / (N - 1) per run"),
            measure(f"ours: one plan, ONNX {planner.manifest.precision.upper()} onnxruntime", "ms", ours,
                    f"{ctx.reps(200, 20)} plans of one 640x480 frame"),
            {"name": "ratio VLM / ours (medians)", "unit": "x", "median": round(ratio, 1), "min": None, "max": None,
             "runs": None, "run": "median over median"}]
    seq = inputs["input_ids"].shape[1]
    return {"title": "The alternative: a generative VLM planner", "rows": rows,
            "notes": [f"VLM: transformers Idefics3ForConditionalGeneration, {params / 1e6:.0f}M parameters, random "
                      f"weights (nothing downloaded; cost does not depend on weight values), torch "
                      f"{torch.__version__}, {torch.get_num_threads()} threads",
                      f"prompt: {seq} tokens = {image_seq_len} image tokens (one 512x512 image, no splitting) + 3 "
                      f"image markers + {PROMPT_TOKENS} text tokens",
                      f"N = {n} new tokens: {how}",
                      "ours: the INT8 planner on onnxruntime CPU in the same process, same frame"]}


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/vlm_baseline.py [run.py options]``: run.py with ``--only vlm``."""
    from run import main as run_main

    return run_main(["--only", "vlm", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
