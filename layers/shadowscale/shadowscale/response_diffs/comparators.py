"""Comparing a production answer with its shadow twin, and rendering redacted examples of mismatches.

A comparator takes both answers decoded as their encodings say (capture_records.decode_payload: JSON -> value,
BASE64 -> bytes, CSV -> text) with those encodings, and returns a Verdict. Identical captures never reach
a comparator: the engine counts them through `Comparator.identical`, which is the common case and costs
one string comparison.

- numeric / json: the answers are decoded (JSON documents; CSV rows become lists of numbers) and walked
  together; numbers agree within tolerance, everything else must be equal. Paths name what differs:
  `a.b`, `items[2].score`, `[3]` for CSV column 3, `$` for the whole answer.
- classification: the label at `labelPath` must be equal; scores at `scoresPath` give argmax agreement,
  top-k overlap and numeric differences.
- text: exact, or equal after case folding and collapsing whitespace ("within tolerance").
- binary: equal bytes (examples show a SHA-256, never the bytes).
- JSON Lines (`application/jsonlines`, capture_records.JsonDocuments): the answers' documents are compared one by
  one with the comparator one JSON answer would get (ignore paths and the classification rule apply within
  each document), and paths name the document: `[1].score`. Unequally many documents is a mismatch named
  `(document count)`; the documents both have are still compared.
"""

from __future__ import annotations

import binascii
import csv
import hashlib
import io
import math
import re
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import orjson

from shadowscale.response_diffs.capture_records import (
    BASE64,
    CSV,
    JSON,
    JSON_LINES_MEDIA,
    Decoded,
    JsonDocuments,
    decode_json_lines,
    media_type,
)
from shadowscale.shared.diff_contract import ClassificationRule, DiffConfig, Tolerance

ROOT = "$"
REDACTED = "***"


class Verdict(NamedTuple):
    exact: bool
    within: bool
    abs_diff: float | None = None
    rel_diff: float | None = None
    fields: tuple[str, ...] = ()
    label_agrees: bool | None = None
    argmax_agrees: bool | None = None
    top_k_overlap: float | None = None


# Verdict(...) runs a Python-level __new__; comparators build theirs through the C tuple constructor.
_new_tuple = tuple.__new__


def make_verdict(
    exact: bool,
    within: bool,
    abs_diff: float | None,
    rel_diff: float | None,
    fields: tuple[str, ...],
    label_agrees: bool | None = None,
    argmax_agrees: bool | None = None,
    top_k_overlap: float | None = None,
) -> Verdict:
    return _new_tuple(Verdict, (exact, within, abs_diff, rel_diff, fields, label_agrees, argmax_agrees, top_k_overlap))


class Comparator(Protocol):
    name: str
    # The verdict for two identical captures (counted without decoding anything).
    identical: Verdict

    def compare(
        self, production_encoding: str, production: Decoded, shadow_encoding: str, shadow: Decoded
    ) -> Verdict: ...


# ------------------------------------------------------------------------------------------------ paths


class PathMatcher:
    """Matches the paths of ignore and redact lists: a bare name matches that key at any depth, a path
    matches exactly, and `[]` in a pattern matches any list index (`items[].ssn` matches `items[7].ssn`)."""

    __slots__ = ("_exact", "_keys", "_wildcards")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self._keys = frozenset(p for p in patterns if "." not in p and "[" not in p)
        self._exact = frozenset(p for p in patterns if p not in self._keys and "[]" not in p)
        wildcard = [p for p in patterns if "[]" in p]
        self._wildcards = (
            re.compile("|".join(re.escape(p).replace(r"\[\]", r"\[\d+\]") for p in wildcard)) if wildcard else None
        )

    def __bool__(self) -> bool:
        return bool(self._keys or self._exact or self._wildcards)

    def matches(self, path: str, key: str | None) -> bool:
        if key is not None and key in self._keys:
            return True
        if path in self._exact:
            return True
        return self._wildcards is not None and self._wildcards.fullmatch(path) is not None


def compile_selector(path: str) -> tuple[str | int, ...]:
    """`a.b[2].c` -> ("a", "b", 2, "c"); `[0]` -> (0,); "" -> () (the whole answer)."""
    steps: list[str | int] = []
    for part in filter(None, path.split(".")):
        name, *indexes = part.split("[")
        if name:
            steps.append(name)
        steps.extend(int(index.rstrip("]")) for index in indexes)
    return tuple(steps)


def select(value: Decoded, selector: tuple[str | int, ...]) -> Decoded:
    if len(selector) == 1 and type(value) is dict:  # the usual {"label": ...}
        return value.get(selector[0])
    for step in selector:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(step)
    return value


# --------------------------------------------------------------------------------------------- decoding


def csv_value(token: str) -> float | str:
    token = token.strip()
    try:
        return float(token)
    except ValueError:
        return token


def decode_csv(text: str) -> list[Any]:
    """One row -> a list of values; several rows (a batch) -> a list of lists."""
    rows = text.strip().splitlines()
    if len(rows) == 1:
        return [csv_value(token) for token in rows[0].split(",")]
    return [[csv_value(token) for token in row.split(",")] for row in rows]


def as_structured(encoding: str, value: Decoded) -> Decoded:
    """A decoded answer as JSON-like values: CSV text split into numbers, bytes tried as JSON, then text."""
    if encoding == CSV:
        return decode_csv(value)
    if encoding == BASE64:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value.decode("utf-8", errors="replace")
    return value


def as_text(encoding: str, value: Decoded) -> str:
    if encoding == BASE64:
        return str(value.decode("utf-8", errors="replace"))
    if encoding == JSON and not isinstance(value, str):
        return orjson.dumps(value).decode()  # canonical: key order and spacing as parsed
    return str(value)


def as_bytes(encoding: str, value: Decoded) -> bytes:
    if encoding == BASE64:
        return bytes(value)
    return as_text(encoding, value).encode()


# ------------------------------------------------------------------------------------------ structured


def _join(parent: str, step: str | int) -> str:
    if type(step) is int:
        return f"{parent}[{step}]"
    return f"{parent}.{step}" if parent else str(step)


class _Walk:
    """Walks two decoded answers side by side, remembering the worst numeric difference (0.0 when no
    number differs) and every path that differs beyond tolerance.

    Scalars are settled inside the container loops, and a path is only spelled out for something that
    differs: most of an answer usually agrees, and this runs once per differing pair."""

    __slots__ = ("abs_tol", "exact", "fields", "ignore", "max_abs", "max_rel", "rel_tol", "within")

    def __init__(self, abs_tol: float, rel_tol: float, ignore: PathMatcher | None) -> None:
        self.abs_tol = abs_tol
        self.rel_tol = rel_tol
        self.ignore = ignore
        self.exact = True
        self.within = True
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.fields: list[str] = []

    def differs(self, path: str) -> None:
        self.exact = False
        self.within = False
        self.fields.append(path or ROOT)

    def numbers(self, a: float, b: float, parent: str, step: str | int | None) -> None:
        """Two numbers known to differ (a != b), at parent/step."""
        self.exact = False
        difference = abs(a - b)
        if not math.isfinite(difference):
            # Infinities and NaN have no distance: they differ, unless both are NaN; they stay off the scale.
            if not (math.isnan(a) and math.isnan(b)):
                self.within = False
                self.fields.append((parent or ROOT) if step is None else _join(parent, step))
            return
        scale = max(abs(a), abs(b))  # > 0: both are finite and they differ
        relative = difference / scale
        if difference > self.max_abs:
            self.max_abs = difference
        if relative > self.max_rel:
            self.max_rel = relative
        if difference > self.abs_tol and difference > self.rel_tol * scale:
            self.within = False
            self.fields.append((parent or ROOT) if step is None else _join(parent, step))

    def visit(self, a: Decoded, b: Decoded, path: str) -> None:
        kind_a, kind_b = type(a), type(b)
        if kind_a is dict:
            if kind_b is dict:
                self._dict(a, b, path)
            else:
                self.differs(path)
        elif kind_a is list:
            if kind_b is list:
                self._list(a, b, path)
            else:
                self.differs(path)
        elif (kind_a is float or kind_a is int) and (kind_b is float or kind_b is int):
            if a != b:
                self.numbers(a, b, path, None)
        elif kind_a is not kind_b or a != b:
            self.differs(path)

    def _dict(self, a: dict[str, Any], b: dict[str, Any], path: str) -> None:
        ignore = self.ignore
        shared = 0
        for key, value in a.items():
            if key not in b:
                if ignore is None or not ignore.matches(_join(path, key), key):
                    self.differs(_join(path, key))
                continue
            shared += 1
            theirs = b[key]
            kind = type(value)
            if kind is type(theirs) and kind is not dict and kind is not list:
                if value == theirs:
                    continue
                if ignore is not None and ignore.matches(_join(path, key), key):
                    continue
                if kind is float or kind is int:
                    self.numbers(value, theirs, path, key)
                else:
                    self.differs(_join(path, key))
            else:
                inner = _join(path, key)
                if ignore is None or not ignore.matches(inner, key):
                    self.visit(value, theirs, inner)
        if shared < len(b):  # keys only the shadow has
            for key in b:
                if key not in a and (ignore is None or not ignore.matches(_join(path, key), key)):
                    self.differs(_join(path, key))

    def _list(self, a: list[Any], b: list[Any], path: str) -> None:
        if len(a) != len(b):
            self.differs(path)
        ignore = self.ignore
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            kind = type(x)
            if kind is type(y) and kind is not dict and kind is not list:
                if x == y:
                    continue
                if ignore is not None and ignore.matches(f"{path}[{index}]", None):
                    continue
                if kind is float or kind is int:
                    self.numbers(x, y, path, index)
                else:
                    self.differs(f"{path}[{index}]")
            else:
                inner = f"{path}[{index}]"
                if ignore is None or not ignore.matches(inner, None):
                    self.visit(x, y, inner)

    def verdict(self) -> Verdict:
        return make_verdict(self.exact, self.within, self.max_abs, self.max_rel, tuple(self.fields))


class StructuredComparator:
    """numeric and json: the same walk; they differ only in which answers `auto` sends them."""

    def __init__(self, name: str, tolerance: Tolerance, ignore: PathMatcher) -> None:
        self.name = name
        self.abs_tol = tolerance.absolute
        self.rel_tol = tolerance.relative
        self.ignore = ignore if ignore else None
        self.identical = Verdict(True, True, 0.0, 0.0)

    def compare(self, production_encoding: str, production: Decoded, shadow_encoding: str, shadow: Decoded) -> Verdict:
        if production_encoding == CSV and shadow_encoding == CSV and "\n" not in production and "\n" not in shadow:
            return self._csv_row(production, shadow)
        walk = _Walk(self.abs_tol, self.rel_tol, self.ignore)
        ours = production if production_encoding == JSON else as_structured(production_encoding, production)
        theirs = shadow if shadow_encoding == JSON else as_structured(shadow_encoding, shadow)
        walk.visit(ours, theirs, "")
        return walk.verdict()

    def _csv_row(self, production: str, shadow: str) -> Verdict:
        # One CSV row (a score, a vector): compare token by token, converting only the tokens that differ.
        walk = _Walk(self.abs_tol, self.rel_tol, self.ignore)
        ours, theirs = production.split(","), shadow.split(",")
        if len(ours) != len(theirs):
            walk.differs("")
        ignore = self.ignore
        for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            if a == b:
                continue
            path = f"[{index}]"
            if ignore is not None and ignore.matches(path, None):
                continue
            x, y = csv_value(a), csv_value(b)
            if type(x) is float and type(y) is float:
                if x != y:  # "1.0" and "1" are the same number
                    walk.numbers(x, y, "", index)
            elif x != y:
                walk.differs(path)
        return walk.verdict()


# -------------------------------------------------------------------------------------- classification


def _scores(value: Decoded) -> list[float] | None:
    if type(value) is not list or not value:
        return None
    for item in value:
        if type(item) is not float and type(item) is not int:
            return None
    return value


def _top_level_key(selector: tuple[str | int, ...] | None) -> str | None:
    return selector[0] if selector is not None and len(selector) == 1 and isinstance(selector[0], str) else None


def rank_agreement(ours: Sequence[float], theirs: Sequence[float], top_k: int) -> tuple[bool, float]:
    """Whether the two score vectors agree on the best class, and the share of their top k they have in
    common. Best first; sorting is stable, reversed too, so ties keep the lower index first."""
    classes = range(len(ours))
    if top_k >= len(ours):  # every class is in the top k
        return max(classes, key=ours.__getitem__) == max(classes, key=theirs.__getitem__), 1.0
    ours_ranked = sorted(classes, key=ours.__getitem__, reverse=True)
    theirs_ranked = sorted(classes, key=theirs.__getitem__, reverse=True)
    if ours_ranked == theirs_ranked:  # the usual case: the same ranking, hence an overlap of 1.0
        return True, 1.0
    return ours_ranked[0] == theirs_ranked[0], len(set(ours_ranked[:top_k]).intersection(theirs_ranked[:top_k])) / top_k


class ClassificationComparator:
    name = "classification"

    def __init__(self, rule: ClassificationRule, tolerance: Tolerance, ignore: PathMatcher) -> None:
        self.abs_tol = tolerance.absolute
        self.rel_tol = tolerance.relative
        self.ignore = ignore if ignore else None
        self.label_path = rule.label_path or ROOT
        self.scores_path = rule.scores_path or ""
        self.label = compile_selector(rule.label_path) if rule.label_path is not None else None
        self.scores = compile_selector(rule.scores_path) if rule.scores_path is not None else None
        self.top_k = rule.top_k
        # The usual rule names top-level keys ({"label": ..., "scores": [...]}): read those directly.
        self.label_key = _top_level_key(self.label)
        self.scores_key = _top_level_key(self.scores)
        self.top_level = self.label_key is not None and self.scores_key is not None
        has_label, has_scores = self.label is not None, self.scores is not None
        self.identical = Verdict(
            True,
            True,
            0.0 if has_scores else None,
            0.0 if has_scores else None,
            (),
            True if has_label else None,
            True if has_scores else None,
            1.0 if has_scores else None,
        )

    def compare(self, production_encoding: str, production: Decoded, shadow_encoding: str, shadow: Decoded) -> Verdict:
        ours = production if production_encoding == JSON else as_structured(production_encoding, production)
        theirs = shadow if shadow_encoding == JSON else as_structured(shadow_encoding, shadow)
        if self.top_level and type(ours) is dict and type(theirs) is dict:
            verdict = self._top_level(ours, theirs)
            if verdict is not None:
                return verdict
        return self._walked(ours, theirs)

    def _walked(self, ours: Decoded, theirs: Decoded) -> Verdict:
        """compare() for any two answers: the label and the scores found wherever the rule's paths point."""
        walk = _Walk(self.abs_tol, self.rel_tol, self.ignore)
        both_objects = type(ours) is dict and type(theirs) is dict
        label_agrees = None if self.label is None else self._label_agrees(walk, ours, theirs, both_objects)
        argmax_agrees = overlap = None
        if self.scores is not None:
            argmax_agrees, overlap = self._score_agreement(walk, ours, theirs, both_objects)
        if walk.exact and ours != theirs:
            walk.exact = False  # the answers differ somewhere the rule does not look (e.g. extra fields)
        measured = self.scores is not None
        return make_verdict(
            walk.exact,
            walk.within,
            walk.max_abs if measured else None,
            walk.max_rel if measured else None,
            tuple(walk.fields),
            label_agrees,
            argmax_agrees,
            overlap,
        )

    def _label_agrees(self, walk: _Walk, ours: Decoded, theirs: Decoded, both_objects: bool) -> bool:
        assert self.label is not None
        key = self.label_key
        if key is not None and both_objects:
            a, b = ours.get(key), theirs.get(key)
        else:
            a, b = select(ours, self.label), select(theirs, self.label)
        agrees = a is not None and type(a) is type(b) and a == b
        if not agrees:
            walk.differs(self.label_path)
        return agrees

    def _score_agreement(self, walk: _Walk, ours: Decoded, theirs: Decoded, both_objects: bool) -> tuple[bool, float]:
        """(argmax agrees, top-k overlap); every score that differs is walked as a number."""
        assert self.scores is not None
        key = self.scores_key
        if key is not None and both_objects:
            a_scores, b_scores = _scores(ours.get(key)), _scores(theirs.get(key))
        else:
            a_scores, b_scores = _scores(select(ours, self.scores)), _scores(select(theirs, self.scores))
        if a_scores is None or b_scores is None or len(a_scores) != len(b_scores):
            walk.differs(self.scores_path)
            return False, 0.0
        if a_scores == b_scores:
            return True, 1.0
        path = self.scores_path
        for index, (x, y) in enumerate(zip(a_scores, b_scores, strict=True)):
            if x != y:
                walk.numbers(x, y, path, index)
        argmax_agrees, overlap = rank_agreement(a_scores, b_scores, self.top_k)
        if not argmax_agrees:
            walk.within = False
        return argmax_agrees, overlap

    def _top_level(self, ours: dict[str, Any], theirs: dict[str, Any]) -> Verdict | None:
        """compare() for two objects with a top-level label and scores (equally many, every one a float), on
        local names and without a _Walk: the same verdict, field for field. None for anything else, which
        compare() then walks as usual."""
        a_scores, b_scores = ours.get(self.scores_key), theirs.get(self.scores_key)  # type: ignore[arg-type]
        if type(a_scores) is not list or type(b_scores) is not list or len(a_scores) != len(b_scores) or not a_scores:
            return None
        differences = _float_differences(a_scores, b_scores, self.abs_tol, self.rel_tol, self.scores_path)
        if differences is None:
            return None
        scores_exact, scores_within, max_abs, max_rel, score_fields = differences
        a, b = ours.get(self.label_key), theirs.get(self.label_key)  # type: ignore[arg-type]
        label_agrees = a is not None and type(a) is type(b) and a == b
        if scores_exact:
            argmax_agrees, overlap = True, 1.0
        else:
            argmax_agrees, overlap = rank_agreement(a_scores, b_scores, self.top_k)
        # Exact only if the answers are equal everywhere, also where the rule does not look (extra fields).
        exact = label_agrees and scores_exact and ours == theirs
        within = label_agrees and scores_within and argmax_agrees
        fields = tuple(score_fields) if label_agrees else (self.label_path, *score_fields)
        return _new_tuple(Verdict, (exact, within, max_abs, max_rel, fields, label_agrees, argmax_agrees, overlap))


def _float_differences(
    ours: list[Any], theirs: list[Any], abs_tol: float, rel_tol: float, path: str
) -> tuple[bool, bool, float, float, list[str]] | None:
    """_Walk.numbers() over two equally long score lists, on local names: (equal, within tolerance, largest
    absolute and relative difference, the paths beyond tolerance). None unless every score is a finite
    float (anything else is left to the walk)."""
    exact = within = True
    max_abs = max_rel = 0.0
    fields: list[str] = []
    for index in range(len(ours)):
        x = ours[index]
        y = theirs[index]
        if type(x) is not float or type(y) is not float:
            return None
        if x != y:
            exact = False
            difference = abs(x - y)
            if not math.isfinite(difference):
                return None  # infinities and NaN have no distance: left to the walk
            x_size, y_size = abs(x), abs(y)
            scale = y_size if y_size > x_size else x_size  # as max(): the first of equals
            relative = difference / scale
            if difference > max_abs:
                max_abs = difference
            if relative > max_rel:
                max_rel = relative
            if difference > abs_tol and difference > rel_tol * scale:
                within = False
                fields.append(f"{path}[{index}]")
    return exact, within, max_abs, max_rel, fields


# -------------------------------------------------------------------------------------- text and bytes


def normalise_text(text: str) -> str:
    return " ".join(text.split()).casefold()


class TextComparator:
    name = "text"
    identical = Verdict(True, True)

    def __init__(self, normalise: bool) -> None:
        self.normalise = normalise

    def compare(self, production_encoding: str, production: Decoded, shadow_encoding: str, shadow: Decoded) -> Verdict:
        ours, theirs = as_text(production_encoding, production), as_text(shadow_encoding, shadow)
        if ours == theirs:
            return self.identical
        within = self.normalise and normalise_text(ours) == normalise_text(theirs)
        return make_verdict(False, within, None, None, () if within else (ROOT,))


class BinaryComparator:
    name = "binary"
    identical = Verdict(True, True)

    def compare(self, production_encoding: str, production: Decoded, shadow_encoding: str, shadow: Decoded) -> Verdict:
        if as_bytes(production_encoding, production) == as_bytes(shadow_encoding, shadow):
            return self.identical
        return make_verdict(False, False, None, None, (ROOT,))


# ------------------------------------------------------------------------------------------ JSON Lines

DOCUMENT_COUNT = "(document count)"


def _documents(encoding: str, value: Decoded) -> JsonDocuments | None:
    """A decoded answer as the documents of a JSON Lines payload: as decoded (JSON), parsed from the bytes
    (BASE64), or one document (a twin that answered plain JSON). None when it is no JSON at all."""
    if type(value) is JsonDocuments:
        return value
    if encoding == BASE64:
        try:
            return decode_json_lines(value)
        except ValueError:
            return None
    if encoding == JSON:
        return JsonDocuments((value,))
    return None


def _within_document(index: int, path: str) -> str:
    if path == ROOT:
        return f"[{index}]"
    return f"[{index}]{path}" if path.startswith("[") else f"[{index}].{path}"


def _largest(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


class JsonLinesComparator:
    """A JSON Lines answer, document by document, with the comparator of one JSON document."""

    def __init__(self, per_document: Comparator) -> None:
        self.per_document = per_document
        self.name = per_document.name
        self.identical = per_document.identical

    def compare(self, production_encoding: str, production: Decoded, shadow_encoding: str, shadow: Decoded) -> Verdict:
        ours, theirs = _documents(production_encoding, production), _documents(shadow_encoding, shadow)
        if ours is None or theirs is None:
            return self.per_document.compare(production_encoding, production, shadow_encoding, shadow)
        compare = self.per_document.compare
        verdicts = [compare(JSON, a, JSON, b) for a, b in zip(ours, theirs, strict=False)]
        if not verdicts:
            # No document to compare (one side answered none): only the count can differ.
            counted = len(ours) == len(theirs)
            identical = self.identical
            return make_verdict(
                counted, counted, identical.abs_diff, identical.rel_diff, () if counted else (DOCUMENT_COUNT,)
            )
        return _documents_verdict(verdicts, len(ours) == len(theirs))


def _documents_verdict(verdicts: list[Verdict], counted: bool) -> Verdict:
    """The verdicts of the documents both answers have, as one: exact (within) if every document is and
    both have as many; the largest differences; labels and argmaxes agree if every document's do; the
    mean top-k overlap. Each measure only over the documents that have it (None if none has)."""
    fields = [] if counted else [DOCUMENT_COUNT]
    for index, verdict in enumerate(verdicts):
        fields.extend(_within_document(index, path) for path in verdict.fields)
    overlaps = [verdict.top_k_overlap for verdict in verdicts if verdict.top_k_overlap is not None]
    labels = [verdict.label_agrees for verdict in verdicts if verdict.label_agrees is not None]
    argmaxes = [verdict.argmax_agrees for verdict in verdicts if verdict.argmax_agrees is not None]
    return make_verdict(
        counted and all(verdict.exact for verdict in verdicts),
        counted and all(verdict.within for verdict in verdicts),
        _largest([verdict.abs_diff for verdict in verdicts]),
        _largest([verdict.rel_diff for verdict in verdicts]),
        tuple(fields),
        all(labels) if labels else None,
        all(argmaxes) if argmaxes else None,
        sum(overlaps) / len(overlaps) if overlaps else None,
    )


# ----------------------------------------------------------------------------------------------- choice


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json") or media == "application/jsonlines"


class ComparatorChoice:
    """Picks a comparator per answer encoding and content type, once per combination."""

    def __init__(self, config: DiffConfig) -> None:
        ignore = PathMatcher(config.ignore_paths)
        self.config = config
        self.numeric = StructuredComparator("numeric", config.tolerance, ignore)
        self.json = StructuredComparator("json", config.tolerance, ignore)
        self.text = TextComparator(config.normalise_text)
        self.binary = BinaryComparator()
        self.classification = (
            ClassificationComparator(config.classification, config.tolerance, ignore)
            if config.classification is not None
            else None
        )
        self._chosen: dict[tuple[str, str], Comparator] = {}

    def __call__(self, encoding: str, content_type: str) -> Comparator:
        chosen = self._chosen.get((encoding, content_type))
        if chosen is None:
            chosen = self._choose(encoding, media_type(content_type))
            self._chosen[(encoding, content_type)] = chosen
        return chosen

    def _choose(self, encoding: str, media: str) -> Comparator:
        chosen = self._choose_one(encoding, media)
        if media in JSON_LINES_MEDIA and chosen is not self.text and chosen is not self.binary:
            return JsonLinesComparator(chosen)
        return chosen

    def _choose_one(self, encoding: str, media: str) -> Comparator:
        by_name: dict[str, Comparator | None] = {
            "numeric": self.numeric,
            "json": self.json,
            "text": self.text,
            "binary": self.binary,
            "classification": self.classification,
        }
        named = by_name.get(self.config.comparator)
        if named is not None:
            return named
        structured = encoding in (CSV, JSON) or _is_json_media(media) or media == "text/csv"
        if structured and self.classification is not None:
            return self.classification
        if encoding == JSON or _is_json_media(media):
            return self.json
        if encoding == CSV or media == "text/csv":
            return self.numeric
        if media.startswith("text/"):
            return self.text
        return self.binary


# --------------------------------------------------------------------------------------------- examples


def _redact(value: Decoded, redact: PathMatcher, path: str) -> Decoded:
    if isinstance(value, dict):
        result = {}
        for key, inner in value.items():
            inner_path = f"{path}.{key}" if path else str(key)
            result[key] = REDACTED if redact.matches(inner_path, str(key)) else _redact(inner, redact, inner_path)
        return result
    if isinstance(value, list):
        return [
            REDACTED if redact.matches(f"{path}[{i}]", None) else _redact(inner, redact, f"{path}[{i}]")
            for i, inner in enumerate(value)
        ]
    return value


def _redact_csv(text: str, redact: PathMatcher) -> str:
    """Columns by position, as the csv module reads them: a quoted cell may hold commas, quotes and line
    breaks, and is one column (splitting on commas would shift every later column past the redact list)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for cells in csv.reader(io.StringIO(text, newline="")):
        writer.writerow([REDACTED if redact.matches(f"[{i}]", None) else cell for i, cell in enumerate(cells)])
    rendered = out.getvalue()
    return rendered if text.endswith(("\n", "\r")) else rendered.removesuffix("\n")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit} chars)"


def binary_summary(raw: bytes) -> str:
    return f"<{len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}>"


class ExampleRenderer:
    """Turns a captured payload into the text stored in a mismatch sample: redacted first, then clipped."""

    def __init__(self, redact_fields: tuple[str, ...], max_chars: int) -> None:
        self.redact = PathMatcher(redact_fields)
        self.max_chars = max_chars

    def __call__(self, encoding: str, content_type: str, data: str) -> str:
        return _clip(self._render(encoding, media_type(content_type), data), self.max_chars)

    def _render(self, encoding: str, media: str, data: str) -> str:
        json_lines = media in JSON_LINES_MEDIA
        if encoding == JSON:
            if json_lines:
                return "\n".join(self._json(document) for document in decode_json_lines(data))
            return self._json(orjson.loads(data))
        if encoding == CSV:
            return _redact_csv(data, self.redact) if self.redact else data
        raw = binascii.a2b_base64(data)
        if json_lines:
            try:
                return "\n".join(self._json(document) for document in decode_json_lines(raw))
            except ValueError:
                return binary_summary(raw)
        if _is_json_media(media):
            try:
                return self._json(orjson.loads(raw))
            except orjson.JSONDecodeError:
                return binary_summary(raw)
        if media == "text/csv":
            text = raw.decode("utf-8", errors="replace")
            return _redact_csv(text, self.redact) if self.redact else text
        if media.startswith("text/") and not self.redact:
            return raw.decode("utf-8", errors="replace")
        # Free text may hold anything a redact list names, and bytes cannot be redacted: show a digest.
        return binary_summary(raw)

    def _json(self, value: Decoded) -> str:
        if self.redact:
            value = _redact(value, self.redact, "")
        return orjson.dumps(value).decode()
