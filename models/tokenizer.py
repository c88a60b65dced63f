"""Word-level tokenizer shared by training and the runtime (no torch).

An instruction becomes ``T`` word ids: the text is normalised (Unicode folded, lowercased, punctuation
dropped, spelling variants and synonyms mapped to one canonical word by a fixed table), each word is
looked up in the vocabulary (unknown words -> ``UNK``), and the result is truncated or padded with
``PAD`` to exactly ``T`` ids. The vocabulary and this module's code together define the tokenizer, so
a model trained with one vocabulary behaves the same on every machine that loads its manifest.

``encode`` never raises on a string: empty, very long, emoji or control characters all give ``T`` ids.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable

import numpy as np

from edgeagent.sim.goals import ORIENTATIONS

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")

#: Multi-word phrases replaced before single words (longest first); values may be empty (dropped).
PHRASES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("on", "top", "of"): ("on",),
    ("on", "to"): ("on",),
    ("in", "to"): ("in",),
    ("inside", "of"): ("in",),
    ("to", "the", "left", "of"): ("left", "of"),
    ("to", "the", "right", "of"): ("right", "of"),
    ("left", "hand"): ("left",),
    ("right", "hand"): ("right",),
    ("a", "bit"): ("a", "little"),
    ("a", "little", "bit"): ("a", "little"),
    ("a", "tiny", "bit"): ("a", "little"),
    ("a", "small", "amount"): ("a", "little"),
    ("a", "short", "distance"): ("a", "little"),
    ("a", "long", "way"): ("a", "lot"),
    ("a", "long", "distance"): ("a", "lot"),
    ("a", "tad"): ("a", "little"),
    ("slightly",): ("a", "little"),
    ("a", "great", "deal"): ("a", "lot"),
    ("lots",): ("a", "lot"),
    ("each", "other"): ("each",),
    ("one", "another"): ("each",),
    ("pick", "up"): ("pick",),
    ("put", "down"): ("put",),
    ("set", "down"): ("put",),
    ("a", "smidge"): ("a", "little"),
    # Distances users give that the generator never says.
    ("a", "touch"): ("a", "little"),
    ("a", "small", "distance"): ("a", "little"),
    ("a", "little", "distance"): ("a", "little"),
    ("a", "good", "distance"): ("a", "lot"),
    ("a", "large", "distance"): ("a", "lot"),
    ("a", "big", "distance"): ("a", "lot"),
    ("a", "great", "distance"): ("a", "lot"),
    ("a", "fair", "distance"): ("a", "lot"),
    ("a", "fair", "bit"): ("a", "lot"),
    ("a", "good", "way"): ("a", "lot"),
    # Places said from where the robot stands: far/back = top, near/front = bottom (DESIGN §8).
    **{(a, side, "corner"): (to, side, "corner") for a, to in (("far", "top"), ("back", "top"), ("rear", "top"),
                                                              ("near", "bottom"), ("front", "bottom"))
       for side in ("left", "right")},
    **{(side, "corner", w, *you): ("bottom" if w in ("closest", "nearest") else "top", side, "corner")
       for side in ("left", "right") for w in ("closest", "nearest", "farthest", "furthest")
       for you in (("to", "you"), ("from", "you"), ("you",))},
    ("far", "edge"): ("top", "side"), ("back", "edge"): ("top", "side"), ("rear", "edge"): ("top", "side"),
    ("near", "edge"): ("bottom", "side"), ("front", "edge"): ("bottom", "side"),
    ("halfway", "up"): (), ("halfway", "down"): (), ("halfway", "along"): (), ("halfway",): (),
    ("at", "45", "degrees"): ("diagonal",), ("45", "degrees"): ("diagonal",), ("45", "degree"): ("diagonal",),
    # Shades people name for the simulator's colours.
    ("light", "blue"): ("cyan",), ("sky", "blue"): ("cyan",), ("baby", "blue"): ("cyan",),
    ("dark", "blue"): ("blue",), ("dark", "green"): ("green",), ("dark", "red"): ("red",),
    ("light", "green"): ("green",), ("light", "purple"): ("purple",), ("light", "gray"): ("gray",),
    ("dark", "gray"): ("gray",), ("light", "grey"): ("gray",), ("dark", "grey"): ("gray",),
    ("lined", "up"): ("line",), ("square", "block"): ("block",), ("square", "blocks"): ("blocks",),
    ("square", "cube"): ("block",), ("square", "cubes"): ("blocks",),
    ("running", "away", "from", "you"): ("vertical",), ("pointing", "away", "from", "you"): ("vertical",),
}

#: Single-word normalisations: spelling variants, plurals and synonyms -> the canonical word.
WORDS: dict[str, str] = {
    # objects
    "cube": "block", "box": "block", "brick": "block", "blok": "block", "blocky": "block",
    "crate": "block", "piece": "block", "cubes": "blocks", "boxes": "blocks", "bricks": "blocks",
    "crates": "blocks", "pieces": "blocks", "dish": "bowl", "cup": "bowl", "container": "bowl",
    "basin": "bowl", "bol": "bowl", "tub": "bowl", "pot": "bowl", "plate": "bowl", "basket": "bowl",
    "dishes": "bowls", "cups": "bowls", "containers": "bowls", "basins": "bowls", "tubs": "bowls",
    "pots": "bowls", "plates": "bowls", "baskets": "bowls",
    # colours
    "grey": "gray", "violet": "purple", "magenta": "pink", "rose": "pink", "teal": "cyan",
    "aqua": "cyan", "turquoise": "cyan", "crimson": "red", "scarlet": "red", "navy": "blue",
    "azure": "blue", "lime": "green", "amber": "orange", "golden": "yellow", "gold": "yellow",
    "tan": "brown", "silver": "gray", "colour": "color", "colours": "colors", "colored": "color",
    "coloured": "color", "matching": "match", "matches": "match", "matched": "match",
    # relations
    "onto": "on", "atop": "on", "upon": "on", "into": "in", "inside": "in",
    "within": "in", "beside": "next", "besides": "next", "near": "next",
    # places and directions
    "centre": "middle", "center": "middle", "central": "middle", "centered": "middle",
    "centred": "middle", "upper": "top", "up": "top", "lower": "bottom", "down": "bottom",
    "near-side": "bottom", "leftward": "left", "leftwards": "left", "rightward": "right",
    "rightwards": "right", "above": "top", "below": "bottom", "beneath": "bottom", "under": "bottom",
    "corners": "corner", "sides": "side", "edge": "side", "edges": "side", "border": "side",
    # amounts
    "tiny": "little", "bit": "little", "slight": "little", "much": "lot",
    # verbs
    "place": "put", "set": "put", "drop": "put", "position": "put", "move": "put", "bring": "put",
    "take": "put", "transfer": "put", "relocate": "put", "shift": "put", "slide": "put",
    "deposit": "put", "stash": "put", "plop": "put", "toss": "put", "throw": "put", "insert": "put",
    "load": "put", "lay": "put", "store": "put", "park": "put", "carry": "put", "stick": "put",
    "pop": "put", "send": "put", "get": "put", "leave": "put", "tuck": "put",
    "shove": "push", "nudge": "push", "grab": "pick", "grasp": "pick", "lift": "pick", "stacks": "stack",
    "pile": "stack", "heap": "stack", "arrange": "put", "align": "line", "lines": "line",
    "row": "line", "rows": "line", "column": "line", "columns": "line",
    # orientation
    "horizontally": "horizontal", "vertically": "vertical", "diagonally": "diagonal",
    "every": "all", "both": "all",
    # Words the generator never uses, mapped to the ones the planner learned (for phrasings of users).
    "object": "block", "objects": "blocks", "item": "block", "items": "blocks", "thing": "block",
    "things": "blocks", "square": "block", "squares": "blocks", "organize": "put", "organise": "put",
    "underneath": "bottom", "rear": "back", "farther": "further", "north": "top", "south": "bottom",
    "east": "right", "west": "left", "slanted": "diagonal", "slanting": "diagonal", "oblique": "diagonal",
    "angled": "diagonal", "identical": "same", "mismatched": "different", "unmatched": "different",
    "sit": "be", "sits": "is", "rests": "is", "lies": "is", "resting": "sitting",
    "lying": "sitting", "seated": "sitting", "base": "bottom", "across": "along", "form": "make",
    "forms": "make", "create": "make", "construct": "build", "assemble": "build", "they": "them",
    "adjacent": "next", "toward": "to", "towards": "to", "bin": "bowl", "bins": "bowls",
    "receptacle": "bowl", "vessel": "bowl", "mug": "bowl", "mugs": "bowls", "lavender": "purple",
    "lilac": "purple", "this": "", "these": "", "those": "", "moved": "put", "placed": "put",
    "lined": "line", "piled": "stacked", "finally": "then", "lastly": "then", "pls": "", "plz": "",
    # counts ("all three blocks") say nothing the scene does not show
    "two": "", "three": "", "four": "", "five": "", "six": "",
    # spoken fillers (a transcript keeps them)
    "um": "", "umm": "", "uh": "", "uhh": "", "uhm": "", "er": "", "erm": "", "hmm": "", "mm": "",
    "maroon": "red", "indigo": "purple", "fuchsia": "pink", "olive": "green", "beige": "brown",
    "lemon": "yellow", "charcoal": "gray",
    # hedges on a distance ("about 10 cm", read as "a little")
    "about": "", "roughly": "", "approximately": "", "approx": "",
    # number words to digits-free tokens
    "1": "one",
    # fillers
    "please": "", "kindly": "", "could": "", "would": "", "you": "", "can": "", "hey": "", "robot": "",
    "now": "", "ok": "", "okay": "", "thanks": "", "thank": "", "the": "", "an": "",
    "carefully": "", "gently": "", "quickly": "", "go": "", "ahead": "", "hi": "", "hello": "",
}

#: A row runs left to right and a column top to bottom: said alone ("line them up in a row"), the word
#: gives the line its orientation; an explicit one ("a vertical row", "in a row, diagonal") wins.
ORIENTING: dict[str, str] = {"row": "horizontal", "rows": "horizontal", "column": "vertical", "columns": "vertical"}

#: Words a letter away from a known one that mean something else ("light blue" is not "right blue").
TYPO_KEEP = frozenset({"black", "blacks", "white", "whites", "watch", "where", "there", "while", "below"})


def _typo(word: str, known: str) -> str | None:
    """How ``word`` is one typo away from ``known``: "changed", "swapped", "added" (a letter too many),
    "dropped"; None when it is not."""
    if word == known:
        return None
    if len(word) == len(known):
        diff = [i for i, (x, y) in enumerate(zip(word, known)) if x != y]
        if len(diff) == 1:
            return "changed"
        if len(diff) == 2 and diff[1] == diff[0] + 1 and word[diff[0]] == known[diff[1]] \
                and word[diff[1]] == known[diff[0]]:
            return "swapped"
        return None
    short, long_ = (word, known) if len(word) < len(known) else (known, word)
    if len(long_) - len(short) != 1:
        return None
    i = next((k for k, (x, y) in enumerate(zip(short, long_)) if x != y), len(short))
    if short[i:] != long_[i + 1:]:
        return None
    return "added" if len(word) > len(known) else "dropped"


_SPLIT = re.compile(r"[^\w]+|_+")

#: A distance said as a number and a unit ("about 10 cm", "25 centimetres", "0.2 m", "4 inches").
_DISTANCE = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*(cm|centimet(?:er|re)s?|mm|millimet(?:er|re)s?|m|met(?:er|re)s?|"
                       r"inch(?:es)?|\")(?!\w)")
#: The planner knows two offsets (DESIGN §8): "a little" is 8–15 cm, "a lot" 18–30 cm. A distance said
#: in numbers becomes the nearer of the two; between them, the boundary is their midpoint.
LITTLE_MAX_M = 0.165


def _distance_words(match: re.Match) -> str:
    unit = match.group(2)
    if unit.startswith("c"):  # cm, centimetres
        scale = 0.01
    elif unit.startswith("mm") or unit.startswith("mil"):
        scale = 0.001
    elif unit.startswith("i") or unit == '"':
        scale = 0.0254
    else:  # m, metres, meters
        scale = 1.0
    metres = float(match.group(1).replace(",", ".")) * scale
    return " a little " if metres <= LITTLE_MAX_M else " a lot "


def normalize(text: object) -> list[str]:
    """Canonical words of ``text``: NFKC-folded, lowercase, punctuation dropped, table applied."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    # Fold compatibility forms (full-width letters, ligatures) and strip accents so "Blöck" ~ "block".
    text = unicodedata.normalize("NFKD", text[:10_000])
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    # Apostrophes join ("don't" -> "dont"); every other non-word character separates words.
    text = text.replace("'", "").replace("\u2019", "")
    text = _DISTANCE.sub(_distance_words, text)
    words = [w for w in _SPLIT.split(text) if w]
    words = _apply_phrases(words)
    out: list[str] = []
    implied = None  # (position in out, orientation) of the first row/column word
    for w in words:
        if implied is None and w in ORIENTING:
            implied = (len(out), ORIENTING[w])
        w = WORDS.get(w, w)
        if w:
            out.extend(w.split())
    if implied and not any(w in ORIENTATIONS for w in out):
        out.insert(*implied)
    return out


def _apply_phrases(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    longest = max(len(k) for k in PHRASES)
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            rep = PHRASES.get(tuple(words[i:i + n]))
            if rep is not None:
                out.extend(rep)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def build_vocab(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Vocabulary of the normalised words seen at least ``min_count`` times, most frequent first.

    Index 0 is ``<pad>``, 1 is ``<unk>``; ties are ordered alphabetically so the list is reproducible.
    """
    counts = Counter(w for t in texts for w in normalize(t))
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                   key=lambda w: (-counts[w], w))
    return [*SPECIALS, *words]


class Tokenizer:
    """Maps text to ``T`` word ids with a fixed vocabulary (``vocab[0] == "<pad>"``, ``vocab[1] == "<unk>"``)."""

    def __init__(self, vocab: list[str], T: int):
        if list(vocab[:2]) != list(SPECIALS):
            raise ValueError(f"vocab must start with {list(SPECIALS)}, got {list(vocab[:2])}")
        if len(set(vocab)) != len(vocab):
            dup = next(w for w, c in Counter(vocab).items() if c > 1)
            raise ValueError(f"vocab has the word {dup!r} more than once")
        if T < 1:
            raise ValueError(f"T (token count) must be >= 1, got {T}")
        self.vocab = list(vocab)
        self.T = int(T)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self._targets: dict[str, str] | None = None  # typo targets, built on first need

    def word_id(self, word: str) -> int:
        """Id of one normalised word; a plural falls back to its singular, a typo to the one word it is
        a letter away from (``typo_fix``), else ``UNK``."""
        i = self.index.get(word)
        if i is None and len(word) > 3 and word.endswith("s"):
            i = self.index.get(word[:-1])
        if i is None:
            fixed = self.typo_fix(word)
            i = None if fixed is None else self.index.get(fixed)
        return UNK if i is None else i

    def typo_fix(self, word: str) -> str | None:
        """The known word ``word`` is one typo from ("yelow", "purpel", "gren", "bolw"), or None.

        A typo is one letter dropped, added, changed, or two neighbours swapped, after the first letter
        (people rarely miss that one, and "light", "might", "when", "tray" are words of their own, not
        "right", "then", "gray"). A 3-letter word is fixed only by a dropped letter ("bue"); a changed
        letter only to a known word of 5 or more ("wide" is not "side"); only to a word of the vocabulary,
        and only when exactly one is that close; a word the table knows is never changed.
        """
        if len(word) < 3 or not word.isalpha() or word in TYPO_KEEP:
            return None
        if self._targets is None:
            # Only words the model learned: a synonym of the table ("slide", "stick") is too close to
            # words of its own ("side", "stack") in a vocabulary that lacks them.
            self._targets = {w: w for w in self.vocab[len(SPECIALS):] if len(w) >= 4 and w.isalpha()}
        hits = {}
        for t, canonical in self._targets.items():
            if abs(len(t) - len(word)) > 1 or t[0] != word[0]:
                continue
            kind = _typo(word, t)
            if kind and (len(t) >= 5 or kind != "changed") and (len(word) >= 4 or kind == "dropped"):
                hits[t] = canonical
        found = set(hits.values())
        return found.pop() if len(found) == 1 else None

    def ids(self, text: object) -> list[int]:
        """Word ids of ``text`` without padding or truncation."""
        return [self.word_id(w) for w in normalize(text)]

    def encode(self, text: object) -> np.ndarray:
        """``int64 [T]`` ids of ``text``: truncated to ``T``, padded with ``PAD``."""
        out = np.zeros(self.T, np.int64)
        ids = self.ids(text)[: self.T]
        out[: len(ids)] = ids
        return out

    def decode(self, ids) -> list[str]:
        """Words of ``ids`` (padding dropped); for debugging and logs."""
        return [self.vocab[i] if 0 <= i < len(self.vocab) else "<unk>" for i in np.asarray(ids).ravel()
                if i != PAD]

    def __len__(self) -> int:
        return len(self.vocab)
