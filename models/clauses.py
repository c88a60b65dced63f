"""Split a compound instruction into the single tasks the planner was trained on, and plan them in
order (no torch, no numpy).

The planner learned one task per instruction ("put the red block in the blue bowl"). Users chain
them: "put the red block in the blue bowl, then the green one on the cyan block", "move the red and
the green blocks to the top left corner". Given the whole sentence, the model carries out the first
task and reports done. ``split`` returns the parts in order; ``Compound`` plans them one after the
other with any planner of single tasks (``ModelPlanner`` and ``Router`` both use it, so a
workstation and the plan cache see single tasks too).

A boundary ("and", "then", "after that", a comma, a full stop) splits only when both sides are whole
tasks: each names a block of its own (a colour and a noun, "block", or a bare colour right before
"in", "on", "to", "at") and, after it, where it goes (in, on, to, at, a corner, a side, the middle,
a direction), and the right side starts with a verb or with its block; a side that says "it" or
"them" refers back and stays joined ("pick up the red block and put it in the bowl"). A list of
blocks that share one destination ("the red and the green blocks to the corner") becomes one part
per block. A tower told block by block stays whole. Everything else is one part, unchanged: no
instruction of the training generator is split (tests/models/test_clauses.py checks 3,000 of them
each run; 30,000 were checked when this was written).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

from edgeagent.errors import CallError
from edgeagent.models.tokenizer import WORDS, normalize
from edgeagent.sim.world import COLORS
from edgeagent.types import Call, Plan

#: Canonical words (after ``normalize``) that say where a block goes.
DESTINATION = frozenset({"in", "on", "to", "at", "corner", "side", "middle", "left", "right", "top", "bottom",
                         "next", "behind", "front", "beyond"})
#: Prepositions that make a bare colour the block moved ("put red in the blue bowl").
_INTO = frozenset({"in", "on", "to", "at"})
#: Words that carry a part's verb already ("the green block goes on …", "i want …"): no verb added.
_SAYS_IT = frozenset({"goes", "go", "belongs", "belong", "should", "must", "needs", "need", "want", "like", "be",
                      "is", "end"})
#: Canonical nouns of a block; "one" only right after a colour ("the green one").
BLOCK_NOUNS = frozenset({"block", "blocks"})
#: Words that refer back to an earlier block: a side with one is not a task of its own.
BACK_REFERENCES = frozenset({"it", "them", "its", "itself", "there", "same"})
#: Canonical verbs a part may start with.
VERBS = frozenset({"put", "pick", "stack", "push", "build", "make", "line", "sort", "match", "spread"})
#: Leading words of a right side dropped before it is read ("..., and then also put ...").
LEADERS = frozenset({"first", "firstly", "before", "you", "then", "also", "next", "finally", "lastly",
                     "afterwards", "and", "after", "that", "too", "second", "secondly"})

# Where a sentence may be cut: sentence ends, "and then", "then", "after that", "and", commas.
_BOUNDARY = re.compile(r"\s*(?:[.;!?]+\s+|,?\s+and\s+then\s+|,?\s+then\s*,?\s+|,?\s+after\s+that\s*,?\s*"
                       r"|,?\s+and\s+|,\s*)", re.IGNORECASE)
_RAW_WORD = re.compile(r"[\w'\u2019-]+")


def _is_color(word: str) -> bool:
    return WORDS.get(word, word) in COLORS


def _content(words: list[str]) -> list[str]:
    """``words`` without the leading connective words of a right side."""
    i = 0
    while i < len(words) and words[i] in LEADERS:
        i += 1
    return words[i:]


def _is_task(words: list[str]) -> bool:
    """Whether canonical ``words`` are a whole task: a block of its own and where it goes."""
    if any(w in BACK_REFERENCES for w in words):
        return False
    first = next((i for i, w in enumerate(words) if w in BLOCK_NOUNS
                  or (w == "one" and i and words[i - 1] in COLORS)
                  or (w in COLORS and i + 1 < len(words) and words[i + 1] in _INTO)), None)
    # The block comes before where it goes: "onto the yellow block, place …" names only a destination.
    return first is not None and any(w in DESTINATION for w in words[first + 1:])


def _starts_part(words: list[str]) -> bool:
    """Whether canonical ``words`` open a task: with a verb, or with the block ("the green one in …")."""
    if not words:
        return False
    w = words[0]
    return w in VERBS or w in BLOCK_NOUNS or (w in COLORS and len(words) > 1
                                               and words[1] in (*BLOCK_NOUNS, "one", *_INTO))


def _clauses(text: str) -> list[str]:
    # Pieces between boundaries, as spans of ``text`` so that joined pieces keep their own words.
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.start() == 0 or m.end() == len(text):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    spans = [(a, b) for a, b in spans if text[a:b].strip()]
    if len(spans) < 2:
        return [text.strip()]
    # A right side opens at a piece that starts a task, when what is on its left is a whole task.
    out: list[tuple[int, int, list[str]]] = []
    for a, b in spans:
        w = normalize(text[a:b])
        if not _content(w):
            continue  # "…; after that, put …": connective words only
        if out and not (_starts_part(_content(w)) and _is_task(out[-1][2])):
            out[-1] = (out[-1][0], b, out[-1][2] + w)
        else:
            out.append((a, b, w))
    # A right side must be a whole task too; one that is not goes back onto its left.
    parts: list[tuple[int, int, list[str]]] = []
    for a, b, w in out:
        if parts and not _is_task(w):
            parts[-1] = (parts[-1][0], b, parts[-1][2] + w)
        else:
            parts.append((a, b, w))
    if len(parts) < 2 or not _is_task(parts[0][2]) or _one_tower([w for _, _, w in parts]):
        return [text.strip()]
    texts = []
    for i, (a, b, w) in enumerate(parts):
        piece = _strip_leaders(text[a:b])
        if i and not (VERBS | _SAYS_IT).intersection(w):
            # "…, and the green one in the yellow bowl": the verb is the first part's.
            piece = f"{_verb(parts[0][2])} {piece}"
        texts.append(piece.strip(" ,"))
    if parts[0][2][:1] == ["before"]:
        # "Before you put the red block in the bowl, move the green one to the corner": the other first.
        texts = [*texts[1:], texts[0]]
    return texts


_TOWER_STEMS = ("stack", "build", "make", "making", "tower", "pil")


def _colors_around(words: list[str], marker: str) -> tuple[str | None, str | None]:
    """The last colour before ``marker`` and the first after it: who moves, and onto what."""
    if marker not in words:
        return None, None
    k = words.index(marker)
    before = [w for w in words[:k] if w in COLORS]
    after = [w for w in words[k + 1:] if w in COLORS]
    return (before[-1] if before else None), (after[0] if after else None)


def _one_tower(parts: list[list[str]]) -> bool:
    """Whether the parts describe one tower: each sets a block on another ("a on b, then c on a") or the
    first orders a tower from its bottom ("a tower: pink at the bottom, yellow next, …"). The planner
    learned those whole, and a part alone ("the yellow block next") is no task."""
    if all("on" in w and not DESTINATION.intersection(w) - {"on", "to"} for w in parts):
        # Every part sets a block on a block ("to" here is "i'd like you to"): one tower when a part
        # builds on a block an earlier part moved; separate stacks are separate tasks.
        moved = [_colors_around(w, "on") for w in parts]
        if any(dest and dest in {m for m, _ in moved[:i]} for i, (_, dest) in enumerate(moved)):
            return True
        if any(m is None or dest is None for m, dest in moved):
            return True
    first = parts[0]
    return any(w.startswith(_TOWER_STEMS) for w in first) and any(
        a in ("on", "at") and b == "bottom" and c not in ("left", "right", "side", "corner")
        for a, b, c in zip(first, first[1:], first[2:] + [""]))


def _strip_leaders(piece: str) -> str:
    words = list(_RAW_WORD.finditer(piece))
    i = 0
    while i < len(words) and words[i].group().lower() in LEADERS:
        i += 1
    return piece[words[i].start():] if i < len(words) else piece


def _verb(words: list[str]) -> str:
    return next((w for w in words if w in VERBS and w != "pick"), "put")


# "the red and the green blocks", "red, green and blue cubes", "the red block and the green block"
_COLOR = r"[a-z]+"
_ITEM = rf"(?:the\s+)?({_COLOR})(?:\s+(?:block|cube|box|brick|one|piece)s?)?"


def _distribute(text: str) -> list[str]:
    """One part per block when a list of blocks shares one destination; else ``[text]``."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return [text]
    for m in re.finditer(rf"\b(?:both\s+|all\s+)?{_ITEM}((?:\s*,\s*{_ITEM})*)\s*,?\s+(?:and|&)\s+{_ITEM}", lowered):
        items = [m.group(1), *re.findall(_ITEM, m.group(2)), m.group(4)]
        if not all(_is_color(c) for c in items):
            continue
        colors = [WORDS.get(c, c) for c in items]
        head, tail = normalize(text[:m.start()]), normalize(text[m.end():])
        said = normalize(m.group())
        if not any(w in BLOCK_NOUNS or w == "one" for w in said) or "bowl" in said[-1:] or "bowls" in said[-1:]:
            continue
        if any(w in DESTINATION for w in head):
            continue  # "stack the red block on the blue block and the green block …": not one destination
        if "and" in tail or {"bowls", "blocks"}.intersection(tail) or not any(w in DESTINATION for w in tail):
            continue
        if tail and tail[0] in BLOCK_NOUNS | {"bowl", "bowls"}:
            continue  # "the red and green block's bowl": not a list of blocks
        return [f"{text[:m.start()]}the {c} block{text[m.end():]}" for c in colors]
    return [text]


def split(instruction: str) -> list[str]:
    """The single tasks of ``instruction``, in order; ``[instruction]`` when it is one task."""
    if not isinstance(instruction, str) or not instruction.strip():
        return [instruction]
    parts = [p for clause in _clauses(instruction) for p in _distribute(clause)]
    return parts if len(parts) > 1 else [instruction]


_CACHE = 256


class Compound:
    """Plans a compound instruction part by part with a planner of single tasks.

    ``plan(obs, instruction, plan_one)`` plans the current part with ``plan_one(obs, part)``: a part goes
    on until its plan says done, then the next part starts, and when a call moved the arm since it was
    last home, the plan is ``home`` first (``home``, a validated call, or None where the robot has
    none): the planner learned to tell a task done by the gripper over its goal, so seen there, the next
    part would look done, and every task it learned started from home. Parts are not revisited. Once
    the last part is done the next plan of the same instruction starts over (a planner no executor
    resets may see it again as a new task). ``reset()`` starts over; ``call_done(call)`` tracks the arm.
    An instruction of one task goes to ``plan_one`` unchanged.
    """

    def __init__(self, home=None):
        self.home = home
        self._parts: dict[str, list[str]] = {}
        self._task: list | None = None  # [instruction, current part, arm moved since home]

    def parts(self, instruction: str) -> list[str]:
        """``split(instruction)``, cached."""
        parts = self._parts.get(instruction)
        if parts is None:
            if len(self._parts) >= _CACHE:
                self._parts.clear()
            parts = self._parts[instruction] = split(instruction)
        return parts

    def plan(self, obs, instruction: str, plan_one):
        parts = self.parts(instruction)
        if len(parts) == 1:
            return plan_one(obs, instruction)
        if self._task is None or self._task[0] != instruction:
            self._task = [instruction, 0, False]
        t0 = time.perf_counter()
        spent: dict[str, float] = {}  # per stage, over the parts planned (stages may overlap: no sum)
        while True:
            i = self._task[1]
            plan = plan_one(obs, parts[i])
            for stage, ms in plan.timings_ms.items():
                spent[stage] = spent.get(stage, 0.0) + ms
            if not plan.done:
                where = f"part {i + 1} of {len(parts)}: {parts[i]!r}"
                break
            if i + 1 == len(parts):
                self._task = None
                where = f"all {len(parts)} parts done"
                break
            self._task[1] = i + 1
            if self._task[2] and self.home is not None:
                plan = Plan((self.home,), False, plan.confidence, "local", plan.model)
                where = f"part {i + 1} of {len(parts)} done; the arm goes home before part {i + 2}"
                break
        return replace(plan, latency_ms=(time.perf_counter() - t0) * 1e3, timings_ms=spent,
                       reason=f"{where}; {plan.reason}" if plan.reason else where)

    def call_done(self, call) -> None:
        if self._task is not None:
            self._task[2] = call.primitive != "home"

    def reset(self) -> None:
        self._task = None


def home_call(registry):
    """``home()`` validated by ``registry``; None where the robot has no ``home``."""
    try:
        return registry.validate(Call("home", {}))
    except CallError:
        return None
