"""Instructions the way people type them, composed from small seeded template pieces.

``phrase(family, slots, rng)`` turns what a task means (``slots``: colours, places, relations) into
one instruction string. Every choice is drawn from ``rng``, so the same generator state gives the
same string. Variety comes from composing independent pieces rather than from listing sentences:

- noun phrases: "the red block", "the cube that is red", "red box", "the red one";
- destinations: "in/into/inside the blue bowl", "on/onto/on top of ...", "in the upper left corner";
- sentence shapes: imperative ("put X in Y"), pick-then ("grab X and drop it in Y"), fronted
  ("into Y, put X"), declarative ("X goes in Y", "I want X in Y");
- politeness ("please", "could you", "would you mind ...ing", "I'd like you to"), trailing
  "please"/"thanks", casing (lower, Sentence, ALL CAPS) and end punctuation.

Slots per family (colours are palette words, places are DESIGN §8 place names):

=================  ==============================================================================
pick-place-block   block, target (block colours)
pick-place-bowl    block, bowl; optional n_bowls (1 allows "the bowl")
pick-place-place   block, place
stack              order: bottom-to-top colours, or None for any order
stack-at-place     place
all-to-place       place
all-into-bowl      bowl; optional n_bowls
matching-bowls     (none)
mismatched-bowls   (none)
distinct-corners   n_blocks
relation-to-bowl   relation (left/right/top/bottom/closest/farthest), bowl, dest; optional n_bowls
rank-from-side     side (left/right/top/bottom), rank (1-based), dest
offset             block, ref ({"kind", "color"}), direction (left/right/top/bottom), amount
corner-relative    block, ref ({"kind", "color"}), which (closest/farthest)
line               orientation (horizontal/vertical/diagonal)
=================  ==============================================================================

``dest`` is {"kind": "bowl", "color": c} | {"kind": "block", "color": c} | {"kind": "place", "place": p}.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# -- small helpers ------------------------------------------------------------------------------


def _c(rng: np.random.Generator, options: Sequence):
    """One of ``options`` (repeat an entry to weight it)."""
    return options[int(rng.integers(len(options)))]


def _p(rng: np.random.Generator, prob: float) -> bool:
    return bool(rng.random() < prob)


_GERUND = {"put": "putting", "set": "setting", "get": "getting", "drop": "dropping", "pop": "popping",
           "transfer": "transferring", "stick": "sticking", "pick up": "picking up", "pile up": "piling up",
           "line up": "lining up", "line": "lining", "make": "making", "place": "placing",
           "move": "moving", "arrange": "arranging", "position": "positioning", "stack": "stacking",
           "take": "taking", "slide": "sliding", "grab": "grabbing", "relocate": "relocating"}


def _gerund(verb: str) -> str:
    if verb in _GERUND:
        return _GERUND[verb]
    head, _, rest = verb.partition(" ")
    if head.endswith("e") and not head.endswith("ee"):
        head = head[:-1]
    return (head + "ing" + (" " + rest if rest else "")).strip()


# A verb phrase is a list of clauses (verb, tail); clauses are joined with "and"/"then" and every
# verb can be conjugated as a gerund for "would you mind ...".
Clause = tuple[str, str]


def _join_clauses(rng, clauses: list[Clause], gerund: bool) -> str:
    words = [f"{_gerund(v) if gerund else v} {t}".strip() for v, t in clauses]
    out = words[0]
    for w in words[1:]:
        out += _c(rng, (" and ", " and then ", ", then ", " then ", ", and "))
        out += w
    return out


_POLITE_PREFIX = ("", "", "", "", "", "please ", "please ", "could you ", "can you ", "would you ",
                  "I'd like you to ", "I want you to ", "I need you to ", "go ahead and ", "kindly ",
                  "now ", "ok, ", "robot, ", "hey robot, ", "let's ", "you should ", "try to ")
_POLITE_SUFFIX = ("",) * 8 + (" please", ", please", " for me", " thanks", ", thanks", ", thank you", " now")
_QUESTION_PREFIXES = ("could you ", "can you ", "would you ", "would you mind ")


def _imperative(rng, clauses: list[Clause], *, fronted: bool = False) -> str:
    """A command with optional politeness; 'would you mind' takes the gerund. ``fronted``: it follows
    a fronted destination ("into the bowl, ..."), where "hey robot," no longer reads."""
    if _p(rng, 0.06):
        return "would you mind " + _join_clauses(rng, clauses, gerund=True) + _c(rng, ("", "", " please"))
    prefix = _c(rng, _POLITE_PREFIX)
    if fronted and prefix in ("ok, ", "hey robot, "):
        prefix = ""
    suffix = _c(rng, _POLITE_SUFFIX) if prefix in ("", "ok, ", "robot, ", "hey robot, ") else ""
    return prefix + _join_clauses(rng, clauses, gerund=False) + suffix


# -- noun phrases -------------------------------------------------------------------------------

_BLOCK = ("block", "block", "block", "block", "cube", "cube", "box")
_BLOCKS = {"block": "blocks", "cube": "cubes", "box": "boxes"}
_BOWL = ("bowl",) * 8 + ("dish", "container")
_COLOUR_WORD = ("color", "colour")


def _colour(rng, c: str) -> str:
    # Both spellings of the palette's only ambiguous word, as people type them.
    if c == "gray" and _p(rng, 0.3):
        return "grey"
    return c


def block_np(rng, color: str, *, subject: bool = False) -> str:
    """A noun phrase naming the block of ``color``; "the red one" only where a block is implied."""
    c, n = _colour(rng, color), _c(rng, _BLOCK)
    forms = [f"the {c} {n}"] * 6 + [f"the {n} that is {c}", f"the {n} which is {c}",
                                    f"the {c} colored {n}", f"the {c}-coloured {n}", f"that {c} {n}"]
    if subject:
        forms += [f"the {c} one", f"the {c} {n}"]
    return _c(rng, forms)


def bowl_np(rng, color: str, *, n_bowls: int | None = None) -> str:
    """A noun phrase naming the bowl of ``color`` ("the bowl" alone when it is the only one)."""
    c, n = _colour(rng, color), _c(rng, _BOWL)
    forms = [f"the {c} {n}"] * 6 + [f"the {n} that is {c}", f"the {c} colored {n}", f"that {c} {n}"]
    if n_bowls == 1:
        forms += ["the bowl", "the bowl"]
    return _c(rng, forms)


def ref_np(rng, ref: dict) -> str:
    """A block or bowl given as {"kind", "color"}."""
    if ref["kind"] == "bowl":
        return bowl_np(rng, ref["color"], n_bowls=ref.get("n_bowls"))
    return block_np(rng, ref["color"])


def all_blocks_np(rng, *, plural_only: bool = False) -> tuple[str, bool]:
    """Every block in the scene; returns (text, is_plural). ``plural_only`` for "stack X on top of
    each other", where "each block" would not read."""
    n = _c(rng, _BLOCK)
    plural = _BLOCKS[n]
    forms = [(f"all the {plural}", True), (f"all the {plural}", True), (f"all of the {plural}", True),
             (f"all {plural}", True), (f"the {plural}", True)]
    if not plural_only:  # "stack all the blocks on the table" would read as a place
        forms += [(f"every {n}", False), (f"each {n}", False), (f"all the {plural} on the table", True)]
    return _c(rng, forms)


# -- places ---------------------------------------------------------------------------------------

_VERTICAL = {"top": ("top", "top", "upper"), "bottom": ("bottom", "bottom", "lower")}


def place_np(rng, place: str) -> str:
    """'the top left corner' as 'the upper-left corner', 'the top left', 'the centre of the table'..."""
    words = place.split()
    if place == "middle":
        return _c(rng, ("the middle", "the middle", "the center", "the centre", "the middle of the table",
                        "the center of the table", "the centre of the table", "the middle of the workspace"))
    if words[-1] == "corner":
        v, h = _c(rng, _VERTICAL[words[0]]), words[1]
        return _c(rng, (f"the {v} {h} corner", f"the {v} {h} corner", f"the {v}-{h} corner",
                        f"the {v} {h}", f"the {v} {h} corner of the table", f"the {h} {v} corner",
                        f"the corner at the {v} {h}", f"the {v} {h}-hand corner"))
    side = words[0]
    if side in _VERTICAL:
        s = _c(rng, _VERTICAL[side])
        return _c(rng, (f"the {s} side", f"the {s} side", f"the {s} edge", f"the {side}",
                        f"the {s} side of the table", f"the {s} middle", f"the middle of the {s} edge"))
    return _c(rng, (f"the {side} side", f"the {side} side", f"the {side} edge", f"the {side}",
                    f"the {side}-hand side", f"the {side} side of the table", f"the middle of the {side} edge"))


def place_pp(rng, place: str, *, static: bool = False) -> str:
    """A prepositional phrase for a place: 'in the top left corner', 'to the middle', 'on the left side'."""
    np_ = place_np(rng, place)
    if static:
        preps = ("at",) if np_.endswith("edge") else ("in", "at") if "corner" in place or place == "middle" \
            else ("on", "at")
    elif "corner" in place or place == "middle":
        preps = ("in", "in", "to", "into", "at")
    else:
        preps = ("on", "to", "at", "over to")
    if np_.endswith("edge") and not static:
        preps = ("to", "at", "along")
    return f"{_c(rng, preps)} {np_}"


# -- destinations ---------------------------------------------------------------------------------

_IN = {False: ("in", "in", "into", "into", "into", "inside", "inside", "in to"),
       True: ("in", "in", "inside", "inside of")}
_ON = {False: ("on", "on", "onto", "onto", "onto", "on top of", "on top of", "on to"),
       True: ("on", "on top of", "on top of", "atop")}


def in_pp(rng, bowl: str, *, static: bool = False, n_bowls: int | None = None) -> str:
    return f"{_c(rng, _IN[static])} {bowl_np(rng, bowl, n_bowls=n_bowls)}"


def on_pp(rng, block: str, *, static: bool = False) -> str:
    return f"{_c(rng, _ON[static])} {block_np(rng, block)}"


def dest_pp(rng, dest: dict, *, static: bool = False) -> str:
    """Where a block should end up, as a prepositional phrase."""
    if dest["kind"] == "bowl":
        return in_pp(rng, dest["color"], static=static, n_bowls=dest.get("n_bowls"))
    if dest["kind"] == "block":
        return on_pp(rng, dest["color"], static=static)
    return place_pp(rng, dest["place"], static=static)


_LITTLE = ("a little", "a little", "a bit", "slightly", "just", "a little bit", "a tad", "a short way")
_LOT = ("a lot", "a lot", "far", "well", "way", "a long way", "much further", "quite far")
_DIRECTION = {"left": ("to the left of", "to the left of", "left of", "on the left of"),
              "right": ("to the right of", "to the right of", "right of", "on the right of"),
              "top": ("above", "above", "behind", "further back than", "beyond"),
              "bottom": ("below", "below", "in front of", "in front of", "lower than")}


def offset_pp(rng, direction: str, amount: str, ref: dict) -> str:
    """'a little to the left of the blue bowl', 'far behind the red block'."""
    amt = _c(rng, _LITTLE if amount == "a little" else _LOT)
    rel = _c(rng, _DIRECTION[direction])
    if amt == "much further" and not rel.endswith("than"):
        rel = rel.removeprefix("to the ").removeprefix("on the ")
    if rel.endswith("than"):  # "further back than", "lower than" already carry the comparison
        amt = "a little" if amount == "a little" else _c(rng, ("a lot", "much", "way"))
    return f"{amt} {rel} {ref_np(rng, ref)}"


# -- sentences ------------------------------------------------------------------------------------

_PUT = ("put", "put", "put", "place", "place", "move", "drop", "set", "stick", "get", "transfer", "pop",
        "position", "relocate")
_PUT_TO = ("bring", "take", "carry", "move", "shift", "slide")  # want a motion preposition (to/into/onto)
_PICK = ("pick up", "pick up", "grab", "take", "lift", "grasp", "pick")
_GOES = {False: ("goes", "should go", "needs to go", "has to go", "belongs", "must go"),
         True: ("go", "should go", "need to go", "have to go", "belong", "must go")}
_WANT = ("I want", "I would like", "I'd like", "I need", "I want to see")
_BE = {False: ("should be", "needs to be", "must be", "should end up", "has to end up"),
       True: ("should be", "need to be", "must be", "should end up", "have to end up")}


def transfer(rng, obj: str, dest: Callable[[bool], str], *, plural: bool = False,
             verbs: Sequence[str] = ()) -> str:
    """Move ``obj`` to ``dest`` in one of several sentence shapes. ``dest(static)`` builds the
    destination phrase (static prepositions for "X should be in Y")."""
    shape = _c(rng, ("imp", "imp", "imp", "imp", "pick", "front", "goes", "be", "want"))
    if shape == "be":
        return f"{obj} {_c(rng, _BE[plural])} {dest(True)}"
    if shape == "want":
        return f"{_c(rng, _WANT)} {obj} {dest(True)}"
    where = dest(False)
    if shape == "goes":
        return f"{obj} {_c(rng, _GOES[plural])} {where}"
    verb = _c(rng, tuple(_PUT) + tuple(verbs) + tuple(_PUT_TO))
    if verb in _PUT_TO and where.split()[0] in ("in", "on", "at", "inside", "atop"):
        verb = _c(rng, _PUT)  # "bring X in Y" reads wrong: keep the preposition, change the verb
    if shape == "imp":
        return _imperative(rng, [(verb, f"{obj} {where}")])
    if shape == "pick":
        pronoun = "them" if plural else "it"
        return _imperative(rng, [(_c(rng, _PICK), obj), (verb, f"{pronoun} {where}")])
    return f"{where}, {_imperative(rng, [(verb, obj)], fronted=True)}"


def _pick_place_block(rng, s):
    return transfer(rng, block_np(rng, s["block"], subject=True), lambda st: on_pp(rng, s["target"], static=st),
                    verbs=("stack",))


def _pick_place_bowl(rng, s):
    return transfer(rng, block_np(rng, s["block"], subject=True),
                    lambda st: in_pp(rng, s["bowl"], static=st, n_bowls=s.get("n_bowls")), verbs=("toss",))


def _pick_place_place(rng, s):
    return transfer(rng, block_np(rng, s["block"], subject=True), lambda st: place_pp(rng, s["place"], static=st))


def _stack_unordered(rng) -> list[Clause]:
    obj, _ = all_blocks_np(rng, plural_only=True)
    return [_c(rng, [("stack", obj), ("stack", obj), ("stack", f"{obj} on top of each other"),
                     ("stack", f"{obj} into one tower"), ("stack", f"up {obj}"), ("pile up", obj),
                     ("build", f"a tower out of {obj}"), ("build", f"a tower with {obj}"),
                     ("make", f"a stack of {obj}"), ("make", f"one stack from {obj}"),
                     ("put", f"{obj} in one stack"), ("put", f"{obj} on top of one another"),
                     ("put", f"{obj} into a single pile")])]


def _colour_list(rng, items: list[str]) -> str:
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + _c(rng, (", and ", " and ", ", ")) + items[-1]


def _stack_ordered(rng, order: list[str]) -> list[Clause]:
    """Clauses asking for ``order`` bottom to top, said bottom-up, top-down or pairwise."""
    shape = _c(rng, ("ends", "list-up", "list-down", "pairs", "pairs", "tower"))
    # Lists read best as bare colours ("red, green and blue"); the other shapes take either.
    short = shape in ("list-up", "list-down") or _p(rng, 0.5)
    names = [_colour(rng, c) if short else block_np(rng, c) for c in order]
    obj, _ = all_blocks_np(rng, plural_only=True)
    if shape == "ends":
        mids = "".join(f", then {n}" for n in names[1:-1])
        return [(_c(rng, ("stack", "stack", "pile up")),
                 f"{obj} with {names[0]} {_c(rng, ('at the bottom', 'on the bottom'))}{mids}, "
                 f"then {names[-1]} on top")]
    if shape == "list-up":
        return [(_c(rng, ("stack", "stack", "pile up")), f"{obj} in the order {_colour_list(rng, names)} "
                 f"{_c(rng, ('from the bottom up', 'from bottom to top', 'starting at the bottom'))}")]
    if shape == "list-down":
        top_down = list(reversed(names))
        return [("stack", f"{obj} {_c(rng, ('from top to bottom', 'from the top down'))}: "
                 f"{_colour_list(rng, top_down)}")]
    if shape == "tower":
        parts = [f"{names[0]} on the bottom"] + [f"{n} next" for n in names[1:-1]] + [f"{names[-1]} on top"]
        return [(_c(rng, ("build", "make")), f"a tower: {', '.join(parts)}")]
    full = [block_np(rng, c) for c in order]
    clauses = [(_c(rng, ("put", "place", "stack", "set")), f"{full[1]} {_c(rng, _ON[False])} {full[0]}")]
    for lower, upper in zip(full[1:], full[2:]):
        clauses.append((_c(rng, ("put", "place", "stack")), f"{upper} {_c(rng, _ON[False])} {lower}"))
    return clauses


def _stack(rng, s):
    clauses = _stack_ordered(rng, s["order"]) if s.get("order") else _stack_unordered(rng)
    return _imperative(rng, clauses)


def _stack_at_place(rng, s):
    shape = _c(rng, ("imp", "imp", "front", "be"))
    if shape == "be":
        obj, plural = all_blocks_np(rng, plural_only=True)
        return (f"I want {obj} stacked {place_pp(rng, s['place'], static=True)}" if _p(rng, 0.5) else
                f"{obj} {_c(rng, _BE[plural])} stacked up {place_pp(rng, s['place'], static=True)}")
    (verb, tail), = _stack_unordered(rng)
    where = place_pp(rng, s["place"], static=True)
    if shape == "front":
        return f"{where}, {_imperative(rng, [(verb, tail)], fronted=True)}"
    return _imperative(rng, [(verb, f"{tail} {where}")])


def _all_to_place(rng, s):
    obj, plural = all_blocks_np(rng)
    if _p(rng, 0.25):
        verb = _c(rng, ("gather", "collect", "group", "cluster", "round up"))
        together = _c(rng, ("", "", " together"))
        return _imperative(rng, [(verb, f"{obj}{together} {place_pp(rng, s['place'], static=True)}")])
    return transfer(rng, obj, lambda st: place_pp(rng, s["place"], static=st), plural=plural)


def _all_into_bowl(rng, s):
    obj, plural = all_blocks_np(rng)
    if _p(rng, 0.15):
        return _imperative(rng, [("fill", f"{bowl_np(rng, s['bowl'], n_bowls=s.get('n_bowls'))} with {obj}")])
    return transfer(rng, obj, lambda st: in_pp(rng, s["bowl"], static=st, n_bowls=s.get("n_bowls")),
                    plural=plural)


def _each_all(rng) -> tuple[str, str]:
    """('each block', 'the blocks') style pair with the same noun."""
    n = _c(rng, _BLOCK)
    return _c(rng, (f"each {n}", f"every {n}")), _c(rng, (f"the {_BLOCKS[n]}", f"all the {_BLOCKS[n]}",
                                                           f"all {_BLOCKS[n]}"))


def _matching_bowls(rng, s):
    each, all_ = _each_all(rng)
    col, cols = _c(rng, _COLOUR_WORD), _c(rng, ("colors", "colours"))
    shape = _c(rng, ("each", "all", "each", "all", "goes"))
    if shape == "goes":
        return f"{each} {_c(rng, _GOES[False])} {_c(rng, _IN[False])} the bowl of the same {col}"
    if shape == "each":
        return _imperative(rng, [(_c(rng, _PUT), f"{each} {_c(rng, _IN[False])} "
                                  + _c(rng, (f"the bowl of the same {col}", f"the bowl with the same {col}",
                                             "its matching bowl", f"the bowl that matches its {col}",
                                             f"the same {col} bowl", f"the {col}-matching bowl",
                                             "the bowl of its own colour")))])
    put, into = _c(rng, _PUT), _c(rng, _IN[False])
    return _imperative(rng, [_c(rng, [(put, f"{all_} {into} the bowls with matching {cols}"),
                                      (put, f"{all_} {into} the bowls that match their {cols}"),
                                      (put, f"{all_} {into} bowls of the same {col}"),
                                      ("sort", f"{all_} into the bowls by {col}"),
                                      ("match", f"{all_} to the bowls by {col}"),
                                      ("match", f"{all_} with the bowls of the same {col}"),
                                      ("match", f"{all_} to their bowls")])])


def _mismatched_bowls(rng, s):
    each, all_ = _each_all(rng)
    col, cols = _c(rng, _COLOUR_WORD), _c(rng, ("colors", "colours"))
    shape = _c(rng, ("each", "all", "each", "all", "goes"))
    if shape == "goes":
        return f"{each} {_c(rng, _GOES[False])} {_c(rng, _IN[False])} a bowl of a different {col}"
    if shape == "each":
        return _imperative(rng, [(_c(rng, _PUT), f"{each} {_c(rng, _IN[False])} "
                                  + _c(rng, (f"a bowl of a different {col}", f"a bowl with a different {col}",
                                             f"a bowl whose {col} is different from its own",
                                             f"the wrong {col} bowl", "a bowl that doesn't match it",
                                             f"a bowl that is not its own {col}", "a non-matching bowl")))])
    return _imperative(rng, [(_c(rng, _PUT), f"{all_} {_c(rng, _IN[False])} "
                              + _c(rng, (f"bowls that don't match their {cols}", f"bowls of different {cols}",
                                         f"bowls with non-matching {cols}", f"the wrong {col} bowls",
                                         f"bowls so that no block matches its bowl's {col}",
                                         f"bowls whose {cols} don't match")))])


def _distinct_corners(rng, s):
    each, all_ = _each_all(rng)
    corners = _c(rng, ("different corners", "separate corners", "different corners", "distinct corners"))
    put = _c(rng, _PUT)
    options = [(put, f"{all_} in {corners}"), (put, f"{each} in a different corner"),
               (put, f"{each} in its own corner"), (put, f"{all_} {_c(rng, ('to', 'into'))} {corners}"),
               ("spread", f"{all_} out {_c(rng, ('into', 'to', 'over'))} {corners}"),
               ("distribute", f"{all_} {_c(rng, ('among', 'over'))} the corners, one per corner"),
               ("send", f"{each} to a different corner")]
    if s.get("n_blocks") == 4:
        options.append((_c(rng, _PUT), "one block in each corner"))
    if _p(rng, 0.15):
        return f"{each} {_c(rng, _GOES[False])} {_c(rng, ('in', 'to'))} a different corner"
    return _imperative(rng, [_c(rng, options)])


_ORIENT_ADJ = {"horizontal": ("horizontal", "horizontal", "straight horizontal", "left-to-right"),
               "vertical": ("vertical", "vertical", "straight vertical", "top-to-bottom"),
               "diagonal": ("diagonal", "diagonal", "straight diagonal")}
_ORIENT_ADV = {"horizontal": ("horizontally", "from left to right", "side by side in a row", "in a row"),
               "vertical": ("vertically", "from top to bottom", "in a column", "one behind the other"),
               "diagonal": ("diagonally", "along a diagonal", "on a diagonal", "corner to corner")}


def _line(rng, s):
    obj, _ = all_blocks_np(rng, plural_only=True)
    o = s["orientation"]
    adj, adv = _c(rng, _ORIENT_ADJ[o]), _c(rng, _ORIENT_ADV[o])
    options = [(_c(rng, ("put", "arrange", "place", "set")), f"{obj} in a {adj} line"),
               ("line up", f"{obj} {adv}"), ("line", f"{obj} up {adv}"),
               ("make", f"a {adj} line {_c(rng, ('with', 'out of', 'using'))} {obj}"),
               ("arrange", f"{obj} {_c(rng, ('along', 'on'))} a {adj} line"), ("arrange", f"{obj} {adv}")]
    if _p(rng, 0.1):
        return f"{obj} {_c(rng, _BE[True])} in a {adj} line"
    return _imperative(rng, [_c(rng, options)])


_RELATION = {"left": ("to the left of", "to the left of", "left of", "on the left of", "on the left side of"),
             "right": ("to the right of", "to the right of", "right of", "on the right of", "on the right side of"),
             "top": ("above", "above", "behind", "beyond", "on the far side of"),
             "bottom": ("below", "below", "in front of", "on the near side of", "in front of"),
             "closest": ("closest to", "closest to", "nearest to", "nearest", "nearest to", "closest to"),
             "farthest": ("farthest from", "furthest from", "farthest away from", "furthest away from",
                          "most distant from")}


def relation_np(rng, relation: str, bowl: str, n_bowls: int | None = None) -> str:
    """'the block to the left of the blue bowl', 'whichever cube is closest to the red bowl'."""
    n = _c(rng, _BLOCK)
    rel, ref = _c(rng, _RELATION[relation]), bowl_np(rng, bowl, n_bowls=n_bowls)
    forms = [f"the {n} {rel} {ref}"] * 4 + [f"the {n} that is {rel} {ref}", f"the {n} which is {rel} {ref}",
                                            f"whichever {n} is {rel} {ref}", f"the {n} sitting {rel} {ref}"]
    word, _, prep = rel.partition(" ")
    if word in ("closest", "nearest", "farthest", "furthest") and prep in ("to", "from"):
        forms.append(f"the {word} {n} {prep} {ref}")
    return _c(rng, forms)


_ORDINAL = {1: ("first", "1st"), 2: ("second", "2nd"), 3: ("third", "3rd"), 4: ("fourth", "4th")}
_EXTREME = {"left": ("leftmost", "left-most", "far left"), "right": ("rightmost", "right-most", "far right"),
            "top": ("topmost", "top-most", "uppermost"), "bottom": ("bottommost", "bottom-most", "lowest")}
_SIDE_WORD = {"left": ("left",), "right": ("right",), "top": ("top", "back"), "bottom": ("bottom", "front")}


def rank_np(rng, side: str, rank: int) -> str:
    """'the second block from the left', 'the rightmost cube', 'the 1st block from the top'."""
    n = _c(rng, _BLOCK)
    sideword = _c(rng, _SIDE_WORD[side])
    ordinal = _c(rng, _ORDINAL[rank])
    from_side = _c(rng, (f"from the {sideword}", f"from the {sideword}", f"counting from the {sideword}",
                         f"from the {sideword} side"))
    forms = [f"the {ordinal} {n} {from_side}"] * 3 + [f"the {n} that is {ordinal} {from_side}"]
    if rank == 1:
        ext = _c(rng, _EXTREME[side])
        forms += [f"the {ext} {n}" if ext != f"far {side}" else f"the {n} on the far {side}"] * 3
        forms.append(f"the {n} furthest to the {side}" if side in ("left", "right")
                     else f"the {n} closest to the {sideword}")
    elif side in ("left", "right"):
        forms.append(f"the {ordinal} {side}most {n}")
    return _c(rng, forms)


def _relation_to_bowl(rng, s):
    obj = relation_np(rng, s["relation"], s["bowl"], s.get("n_bowls"))
    return transfer(rng, obj, lambda st: dest_pp(rng, s["dest"], static=st))


def _rank_from_side(rng, s):
    obj = rank_np(rng, s["side"], s["rank"])
    return transfer(rng, obj, lambda st: dest_pp(rng, s["dest"], static=st))


def _offset(rng, s):
    return transfer(rng, block_np(rng, s["block"], subject=True),
                    lambda st: offset_pp(rng, s["direction"], s["amount"], s["ref"]))


def _corner_relative(rng, s):
    ref = ref_np(rng, s["ref"])
    if s["which"] == "closest":
        rel = _c(rng, ("closest to", "closest to", "nearest to", "nearest"))
    else:
        rel = _c(rng, ("farthest from", "furthest from", "farthest away from", "furthest away from"))
    word = rel.split()[0]
    prep = "to" if s["which"] == "closest" else "from"
    corner = _c(rng, (f"the corner {rel} {ref}", f"the corner {rel} {ref}", f"the corner that is {rel} {ref}",
                      f"whichever corner is {rel} {ref}", f"the {word} corner {prep} {ref}"))

    def dest(static: bool) -> str:
        return f"{_c(rng, ('in', 'at') if static else ('in', 'to', 'into', 'in'))} {corner}"

    return transfer(rng, block_np(rng, s["block"], subject=True), dest)


#: family name -> function(rng, slots) -> raw sentence (before casing and punctuation).
_BUILDERS: dict[str, Callable] = {
    "pick-place-block": _pick_place_block, "pick-place-bowl": _pick_place_bowl,
    "pick-place-place": _pick_place_place, "stack": _stack, "stack-at-place": _stack_at_place,
    "all-to-place": _all_to_place, "all-into-bowl": _all_into_bowl, "matching-bowls": _matching_bowls,
    "mismatched-bowls": _mismatched_bowls, "distinct-corners": _distinct_corners,
    "relation-to-bowl": _relation_to_bowl, "rank-from-side": _rank_from_side, "offset": _offset,
    "corner-relative": _corner_relative, "line": _line,
}


def _finish(rng, text: str) -> str:
    """Casing, article dropping and end punctuation, as people type."""
    text = " ".join(text.split())
    lowered = text.lower()
    question = lowered.startswith(_QUESTION_PREFIXES) or any(f", {q}" in lowered for q in _QUESTION_PREFIXES)
    if _p(rng, 0.08):  # terse typing drops articles: "put red block in blue bowl"
        text = " ".join(w for w in text.split(" ") if w != "the") or text
    style = _c(rng, ("sentence",) * 10 + ("lower",) * 8 + ("caps",))
    if style == "sentence":
        text = text[0].upper() + text[1:]
    elif style == "lower":
        text = text.lower()
    else:
        text = text.upper()
    end = _c(rng, ("?", "?", "", ".")) if question else _c(rng, (".", ".", "", "", "!"))
    return text + end


def phrase(family: str, slots: dict, rng: np.random.Generator) -> str:
    """One instruction for ``family`` meaning ``slots``; deterministic for a given ``rng`` state.

    Raises KeyError naming the known families when ``family`` has no phrasing.
    """
    try:
        build = _BUILDERS[family]
    except KeyError:
        raise KeyError(f"no phrasing for family {family!r}; known: {', '.join(_BUILDERS)}") from None
    return _finish(rng, build(rng, slots))


#: Families with phrasing, in table order.
PHRASED_FAMILIES = tuple(_BUILDERS)
