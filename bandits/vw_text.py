"""Vowpal Wabbit's text format for context and action features.

One namespace becomes ``|<prefix><namespace> name:1.5 cat=value ...``: numbers as
``name:value`` (zeros left out), strings as ``name=value``, bags as one ``name=item``
per item, embeddings as ``name_i:value``; spaces, tabs, newlines, ``|`` and ``:`` in
names and values become ``_``. Values are validated as :func:`bandits.inputs.classify`
does, with the same messages.

Namespaces repeat their feature names from request to request (and categorical
namespaces their values), so two bounded memos make the common cases cheap: the
escaped names per namespace layout, and the text of an all-string namespace by content.
"""
from __future__ import annotations

import math

from .inputs import (MAX_ABS_VALUE, NUMBER, NUMBERS, STRING, STRINGS, classify,
                     feature_field, iter_namespaces)
from .hashing import shared_copy

#: Namespace layouts (feature-name tuples) memoised with their escaped names.
LAYOUT_CACHE_LIMIT = 1_024
#: All-string namespaces memoised by content (their text).
CONTENT_CACHE_LIMIT = 16_384
#: Namespaces from this many features up use the memos.
MEMO_MIN_FEATURES = 4

ESCAPE = str.maketrans({" ": "_", "\t": "_", "\n": "_", "\r": "_", "|": "_", ":": "_"})
_LAYOUTS: dict = {}
_CONTENTS: dict = {}
_NUMBER_TYPES = frozenset((float, int))


def namespaces_text(prefix: str, obj, field: str) -> str:
    """The text of every namespace of a feature object; ``""`` when it has none."""
    parts = []
    for ns, feats in iter_namespaces(obj, field):
        text = _memo_text(feats) if len(feats) >= MEMO_MIN_FEATURES else None
        if text is None:
            text = " ".join(feature_tokens(feats, field, ns))
        if text:
            parts.append(f"|{prefix}{ns.translate(ESCAPE)} {text}")
    return " ".join(parts)


def _memo_text(feats):
    """Text of an all-string or all-number namespace from the memos, else None (the
    caller then writes it feature by feature, which validates and names the field)."""
    names = tuple(feats)
    escaped = _LAYOUTS.get(names)
    if escaped is None:
        if not all(type(n) is str for n in names):
            return None
        escaped = tuple(None if n.startswith("_") else n.translate(ESCAPE) for n in names)
        if len(_LAYOUTS) >= LAYOUT_CACHE_LIMIT:
            _LAYOUTS.clear()
        _LAYOUTS[shared_copy(names)] = escaped
    values = tuple(feats.values())
    kinds = set(map(type, values))
    if kinds == {str}:
        key = (names, values)
        text = _CONTENTS.get(key)
        if text is None:
            text = " ".join(f"{e}={v.translate(ESCAPE)}" for e, v in zip(escaped, values) if e)
            if len(_CONTENTS) >= CONTENT_CACHE_LIMIT:
                _CONTENTS.clear()
            _CONTENTS[shared_copy(key)] = text
        return text
    if not kinds <= _NUMBER_TYPES or None in escaped:  # a "_" feature may hold anything
        return None
    try:
        total = math.fsum(values)
    except (OverflowError, ValueError):  # an int beyond float range; inf + -inf
        return None
    # fsum is NaN or infinite if a value is; then min and max are well defined
    if total - total != 0 or not -MAX_ABS_VALUE <= min(values) <= max(values) <= MAX_ABS_VALUE:
        return None
    if kinds == {float}:
        return " ".join([f"{e}:{v!r}" for e, v in zip(escaped, values) if v])
    return " ".join([f"{e}:{float(v)!r}" for e, v in zip(escaped, values) if v])


def feature_tokens(feats, field, ns) -> list:
    """Tokens of one namespace's features, validated (messages name ``field.ns.name``);
    features whose name is not a string or starts with ``_`` are left out."""
    tokens = []
    for name, value in feats.items():
        if isinstance(name, str) and not name.startswith("_"):
            tokens += tokens_of(name, value, feature_field(field, ns, name))
    return tokens


def tokens_of(name, value, field) -> list:
    """VW text tokens of one feature (name escaped; numbers as name:value)."""
    kind = classify(value, field)
    name = name.translate(ESCAPE)
    if kind == NUMBER:
        return [f"{name}:{float(value)!r}"] if value else []
    if kind == STRING:
        return [f"{name}={value.translate(ESCAPE)}"]
    if kind == STRINGS:
        return [f"{name}={v.translate(ESCAPE)}" for v in value]
    if kind == NUMBERS:
        return [f"{name}_{i}:{float(v)!r}" for i, v in enumerate(value) if v]
    return []
