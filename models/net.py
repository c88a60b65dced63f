"""The planner network (torch, training and export only; the runtime never imports this file).

Image + instruction tokens in, a K-slot plan out (the model contract, DESIGN §5):

    image  uint8 [B, S, S, 3] BGR ──► /255, mean/std ──► conv stem ──► G x G patch features ─────┐
    tokens int64 [B, T] ──► word embedding + positions ─┐                                        │
    K learned plan-slot queries ────────────────────────┴► text encoder (words, then slots read  │
                                                           the words) ──► [words; slots] ────────┤
                                                                                                  ▼
          x0 = [patches; words; slots] ──► h = blocks(x0 + h), repeated ``cycles`` times (shared weights)
                                                                                                  ▼
    heads on h: prim_logits [B, K, P]          (slot features -> linear; index 0 = END)
                point_logits [B, K, A, G*G]    (slot-arg query · patch key)
                point_offset [B, K, A, G*G, 2] (sigmoid; sub-cell dx, dy per cell)
                confidence [B, 1]              (sigmoid; P(the plan succeeds): trained on the first
                                                call being right, then refit on closed-loop rollouts)
    training-only heads (never exported): the object each patch shows, the object each slot's
    point lands on (auxiliary losses that ground colour words in pixels much sooner), the rank of
    each patch's block counted from each side ("the second block from the left"), and its distance
    rank and quadrant from each bowl ("the block nearest the blue bowl").

Each cycle refines the previous cycle's state with the same weights (draft -> refine, as in tiny
recursive models). Training supervises the heads after every cycle, so a variant exported with fewer
or more cycles from the same weights still plans; the edge runs few, a workstation many.

Only TensorRT-friendly ops are used: Conv, MatMul/Gemm, Add, Mul, Softmax, LayerNormalization, Erf
(GELU), Sigmoid, Relu, Gather (embeddings, and the key padding bias, which is a Gather from a constant
table so no boolean ops appear), Concat, Reshape/Transpose with static shapes, Slice with constant
axes. No data-dependent shapes anywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

#: ImageNet-style per-channel statistics, in the BGR order of the input.
MEAN_BGR = (0.406, 0.456, 0.485)
STD_BGR = (0.225, 0.224, 0.229)
#: Added to attention scores of padding keys; large but finite so an all-pad row stays finite.
PAD_BIAS = -1e4
#: Hidden width of the per-cell offset MLP.
OFFSET_HIDDEN = 32


@dataclass(frozen=True)
class NetConfig:
    """Sizes of the network; saved in every checkpoint and copied into the manifest."""

    vocab_size: int
    # Number of primitive classes including END at index 0.
    P: int
    # Image side (pixels), patch grid side, token count, plan slots, point args per slot.
    S: int = 96
    G: int = 12
    T: int = 32
    K: int = 4
    A: int = 2
    # Transformer width, heads, layers per cycle, MLP expansion.
    width: int = 128
    heads: int = 4
    layers: int = 2
    mlp: int = 2
    # Default refinement cycles (export can choose another number).
    cycles: int = 2
    # Object classes of the training-only auxiliary heads: none + blocks and bowls of each colour.
    objects: int = 21
    # Channels of the conv stem's hidden stage (see Stem).
    stem: tuple[int, ...] = (48,)
    # Rank classes of the training-only rank head (0 = no such head; models before it have none).
    ranks: int = 0
    # Quadrant classes of the training-only bowl-relation head, which predicts per bowl colour a
    # distance rank (``ranks`` classes) and a quadrant (0 = no such head).
    quadrants: int = 0
    # What the confidence head reads: "slot" (the first slot's features) or "plan" (every slot's
    # features and how peaked each primitive and point distribution is), see Heads.
    confidence: str = "slot"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stem"] = list(self.stem)
        return d

    @staticmethod
    def from_dict(d: dict) -> "NetConfig":
        d = dict(d)
        d["stem"] = tuple(d.get("stem", (48,)))
        return NetConfig(**d)


class Stem(nn.Module):
    """uint8 BGR [B, S, S, 3] -> patch features [B, G*G, width]; normalisation inside the graph.

    Cheap on purpose (it is a third of the training step otherwise): a (p/2 x p/2, stride p/2) conv
    to a 2G x 2G map, a 3x3 conv mixing neighbours there, and a 2x2 stride-2 conv to the G x G grid,
    where p = S / G is the patch side. Blocks are about 5 pixels at S = 96, so the first conv sees
    each one whole or in two pieces.
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        patch = cfg.S // cfg.G
        if cfg.S % cfg.G or patch % 2:
            raise ValueError(f"S/G (the patch side) must be an even whole number, got S={cfg.S}, G={cfg.G}")
        c1 = cfg.stem[0]
        self.convs = nn.Sequential(
            nn.Conv2d(3, c1, patch // 2, stride=patch // 2), nn.ReLU(),
            nn.Conv2d(c1, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, cfg.width, 2, stride=2))
        self.register_buffer("scale", torch.tensor([1 / (255 * s) for s in STD_BGR]).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor([-m / s for m, s in zip(MEAN_BGR, STD_BGR)]).view(1, 3, 1, 1))
        self.GG, self.width = cfg.G * cfg.G, cfg.width

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() * self.scale + self.shift
        x = self.convs(x)  # [B, width, G, G]
        return x.reshape(-1, self.width, self.GG).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, cfg: NetConfig, n: int):
        super().__init__()
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)
        self.n, self.h, self.dh = n, cfg.heads, cfg.width // cfg.heads

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        # Static reshapes (only the batch dim is -1) keep the exported graph free of Shape ops.
        q, k, v = self.qkv(x).reshape(-1, self.n, 3, self.h, self.dh).permute(2, 0, 3, 1, 4).unbind(0)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh)) + key_bias
        y = att.softmax(-1) @ v  # [B, h, n, dh]
        return self.out(y.transpose(1, 2).reshape(-1, self.n, self.h * self.dh))


class Block(nn.Module):
    """Pre-norm transformer layer."""

    def __init__(self, cfg: NetConfig, n: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.attn = Attention(cfg, n)
        self.fc = nn.Linear(cfg.width, cfg.mlp * cfg.width)
        self.proj = nn.Linear(cfg.mlp * cfg.width, cfg.width)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), key_bias)
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class TextEncoder(nn.Module):
    """Words in context before they meet the image: two residual width-3 convolutions over the word
    sequence (a colour binds to the noun beside it, "red block" vs "blue bowl", wherever the phrase
    sits in the sentence), then one self-attention layer over the words and the plan slots, so each
    slot reads the instruction before the image's many patches join in.

    The convolutions are Conv2d with (1, 3) kernels on a [B, d, 1, T] view: plain 2-D convolutions
    for TensorRT. Padding words are zeroed before each convolution so they never leak into words.
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        d = cfg.width
        self.T, self.d = cfg.T, d
        self.convs = nn.ModuleList(nn.Conv2d(d, d, (1, 3), padding=(0, 1)) for _ in range(2))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(2))
        self.block = Block(cfg, cfg.T + cfg.K)

    def forward(self, words: torch.Tensor, slots: torch.Tensor, keep: torch.Tensor,
                key_bias: torch.Tensor) -> torch.Tensor:
        """[words; slots] in context, [B, T + K, d]. ``keep`` [B, T, 1] is 1 for words, 0 for padding;
        ``key_bias`` [B, 1, 1, T + K] masks padding keys."""
        for conv, norm in zip(self.convs, self.norms):
            x = (norm(words) * keep).transpose(1, 2).reshape(-1, self.d, 1, self.T)
            words = words + F.gelu(conv(x)).reshape(-1, self.d, self.T).transpose(1, 2)
        return self.block(torch.cat([words, slots], dim=1), key_bias)


#: Inputs the confidence head can read (NetConfig.confidence).
CONFIDENCE_INPUTS = ("slot", "plan")


def conf_features(cfg: NetConfig) -> int:
    """Width of the confidence head's input."""
    if cfg.confidence == "plan":
        return cfg.K * cfg.width + cfg.K + cfg.K * cfg.A
    return cfg.width


class Heads(nn.Module):
    """Plan outputs from the token states after a cycle."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        d = cfg.width
        self.cfg = cfg
        self.ln_slot, self.ln_patch = nn.LayerNorm(d), nn.LayerNorm(d)
        self.prim = nn.Linear(d, cfg.P)
        self.query = nn.Linear(d, cfg.A * d)  # one pointing query per point argument
        self.key = nn.Linear(d, d)
        # The offset MLP runs on every (slot, arg, cell): keep it narrow, it dominates the head's cost.
        self.off_patch = nn.Linear(d, OFFSET_HIDDEN)
        self.off_query = nn.Linear(d, OFFSET_HIDDEN, bias=False)
        self.off_out = nn.Linear(OFFSET_HIDDEN, 2)
        if cfg.confidence not in CONFIDENCE_INPUTS:
            raise ValueError(f"confidence must be one of {', '.join(CONFIDENCE_INPUTS)}, got {cfg.confidence!r}")
        self.conf = nn.Sequential(nn.Linear(conf_features(cfg), d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, patches: torch.Tensor, slots: torch.Tensor):
        c = self.cfg
        d, GG = c.width, c.G * c.G
        s = self.ln_slot(slots)  # [B, K, d]
        p = self.ln_patch(patches)  # [B, GG, d]
        prim_logits = self.prim(s)
        q = self.query(s).reshape(-1, c.K * c.A, d)  # [B, K*A, d]
        point_logits = (q @ self.key(p).transpose(1, 2)) * (1.0 / math.sqrt(d))
        point_logits = point_logits.reshape(-1, c.K, c.A, GG)
        # Offset per (slot, arg, cell): the cell's content and what this argument is looking for.
        op = self.off_patch(p).reshape(-1, 1, GG, OFFSET_HIDDEN)
        oq = self.off_query(q).reshape(-1, c.K * c.A, 1, OFFSET_HIDDEN)
        off = torch.sigmoid(self.off_out(F.relu(op + oq)))  # [B, K*A, GG, 2]
        point_offset = off.reshape(-1, c.K, c.A, GG, 2)
        if c.confidence == "plan":
            # How sure each slot is of its primitive and of each point (detached: the confidence loss
            # must not reshape the plan's own distributions).
            peaks = [prim_logits.detach().softmax(-1).amax(-1),
                     point_logits.detach().softmax(-1).amax(-1).reshape(-1, c.K * c.A)]
            feat = torch.cat([s.reshape(-1, c.K * d), *peaks], dim=-1)
        else:
            feat = s[:, 0]
        confidence = torch.sigmoid(self.conf(feat))
        return prim_logits, point_logits, point_offset, confidence


class PlannerNet(nn.Module):
    """The whole planner; ``forward(image, tokens, cycles)`` returns the contract's four outputs."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        d, GG = cfg.width, cfg.G * cfg.G
        self.n = GG + cfg.T + cfg.K
        self.stem = Stem(cfg)
        self.patch_pos = nn.Parameter(torch.randn(1, GG, d) * 0.02)
        self.patch_ln = nn.LayerNorm(d)
        self.word = nn.Embedding(cfg.vocab_size, d)
        self.word_pos = nn.Parameter(torch.randn(1, cfg.T, d) * 0.02)
        self.text = TextEncoder(cfg)
        self.slots = nn.Parameter(torch.randn(1, cfg.K, d) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg, self.n) for _ in range(cfg.layers))
        self.ln_out = nn.LayerNorm(d)
        self.heads = Heads(cfg)
        # Training-only heads (never exported): which object each patch shows, and which object each
        # slot's point argument lands on. They ground colour words in pixels much sooner.
        self.aux_patch = nn.Linear(d, cfg.objects)
        self.aux_slot = nn.Linear(d, cfg.A * cfg.objects)
        # And each patch's block's rank from the left, right, top and bottom (orders blocks by position).
        self.aux_rank = nn.Linear(d, 4 * cfg.ranks) if cfg.ranks else None
        # And, per bowl colour (half the non-empty object classes), that block's distance rank and
        # quadrant from the bowl.
        self.bowls = (cfg.objects - 1) // 2
        self.aux_bowl = nn.Linear(d, self.bowls * (cfg.ranks + cfg.quadrants)) if cfg.quadrants and cfg.ranks else None
        # Per-token-id attention bias: PAD keys are masked by a Gather from this constant table.
        pad_bias = torch.zeros(cfg.vocab_size)
        pad_bias[0] = PAD_BIAS
        self.register_buffer("pad_bias", pad_bias)
        keep = torch.ones(cfg.vocab_size, 1)
        keep[0] = 0.0
        self.register_buffer("keep", keep)
        place = torch.zeros(cfg.T, self.n)
        place[torch.arange(cfg.T), GG + torch.arange(cfg.T)] = 1.0
        self.register_buffer("place_words", place)
        self.register_buffer("place_text", place[:, GG:])
        self.apply(_init)

    def embed(self, image: torch.Tensor, tokens: torch.Tensor, batch: int | None = None):
        """Input tokens x0 [B, N, d] and the additive key bias [B, 1, 1, N].

        ``batch`` as a Python int (export, 1) keeps the slot queries a graph constant; during
        training it is read from the input.
        """
        c = self.cfg
        B = image.shape[0] if batch is None else batch
        patches = self.patch_ln(self.stem(image)) + self.patch_pos
        # Padding keys get PAD_BIAS: a Gather from a constant table, then constant placement matrices
        # put the T word biases at their sequence positions (zeros at patches and slots).
        word_bias = self.pad_bias[tokens]  # [B, T]: PAD_BIAS at padding, 0 at words
        slots = self.slots if B == 1 else self.slots.expand(B, c.K, c.width)
        text_bias = (word_bias @ self.place_text).reshape(-1, 1, 1, c.T + c.K)
        text = self.text(self.word(tokens) + self.word_pos, slots, self.keep[tokens], text_bias)
        x0 = torch.cat([patches, text], dim=1)
        key_bias = word_bias @ self.place_words  # [B, N]
        return x0, key_bias.reshape(-1, 1, 1, self.n)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor, cycles: int | None = None,
                all_cycles: bool = False, batch: int | None = None):
        """Plan outputs after ``cycles`` refinement cycles (default ``cfg.cycles``).

        With ``all_cycles`` returns a list with the outputs after every cycle (for deep supervision).
        """
        outs = self.run(image, tokens, cycles, all_cycles=all_cycles, batch=batch)
        return outs if all_cycles else outs[-1]

    def run(self, image, tokens, cycles: int | None = None, *, all_cycles: bool = True, aux: bool = False,
            batch: int | None = None) -> list[tuple]:
        """Outputs of every cycle (or only the last); with ``aux`` each tuple also carries the
        training-only object logits: per patch [B, G*G, O] and per slot argument [B, K, A, O], and
        with a rank head the rank logits per patch and side [B, G*G, 4, ranks], and with a bowl head
        the distance-rank and quadrant logits per patch and bowl colour [B, G*G, bowls, ranks + quadrants]."""
        cycles = self.cfg.cycles if cycles is None else int(cycles)
        if cycles < 1:
            raise ValueError(f"cycles must be >= 1, got {cycles}")
        x0, key_bias = self.embed(image, tokens, batch)
        c = self.cfg
        GG, K = c.G * c.G, c.K
        h = x0
        outs = []
        for i in range(cycles):
            if i:
                h = h + x0  # re-inject the input so each cycle refines with the evidence in view
            for blk in self.blocks:
                h = blk(h, key_bias)
            if all_cycles or i == cycles - 1:
                z = self.ln_out(h)
                patches, slots = z[:, :GG], z[:, self.n - K:]
                out = self.heads(patches, slots)
                if aux:
                    out = (*out, self.aux_patch(patches), self.aux_slot(slots).reshape(-1, K, c.A, c.objects))
                    if self.aux_rank is not None:
                        out = (*out, self.aux_rank(patches).reshape(-1, GG, 4, c.ranks))
                    if self.aux_bowl is not None:
                        out = (*out, self.aux_bowl(patches).reshape(-1, GG, self.bowls, c.ranks + c.quadrants))
                outs.append(out)
        return outs


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)


class ExportWrapper(nn.Module):
    """Fixed-cycle, batch-1 module for ``torch.onnx.export`` (named inputs/outputs of the contract)."""

    def __init__(self, net: PlannerNet, cycles: int, objects: bool = False):
        super().__init__()
        self.net, self.cycles, self.objects = net, int(cycles), bool(objects)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor):
        if not self.objects:
            return self.net(image, tokens, self.cycles, batch=1)
        # The plan, and per patch the probability of each object class it shows (the training-only
        # patch head, after the last cycle): the runtime tells a named object absent by it.
        out = self.net.run(image, tokens, self.cycles, all_cycles=False, aux=True, batch=1)[-1]
        return (*out[:4], out[4].softmax(-1))


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
