"""Comparators: numbers with tolerance, JSON documents, classification, text, bytes; choice and redaction."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from shadowscale.response_diffs.capture_records import decode_payload, media_type
from shadowscale.response_diffs.comparators import ComparatorChoice, ExampleRenderer, PathMatcher, Verdict
from shadowscale.shared.diff_contract import DiffConfig

from tests.capture_factories import b64, diff_config


def compare(config_overrides: dict[str, Any], encoding: str, content_type: str, ours: str, theirs: str) -> Verdict:
    comparator = ComparatorChoice(diff_config(**config_overrides))(encoding, content_type)
    return comparator.compare(encoding, decode_payload(encoding, ours), encoding, decode_payload(encoding, theirs))


def numeric(ours: str, theirs: str, **overrides: Any) -> Verdict:
    return compare(overrides, "CSV", "text/csv", ours, theirs)


def document(ours: Any, theirs: Any, **overrides: Any) -> Verdict:
    return compare(overrides, "JSON", "application/json", orjson.dumps(ours).decode(), orjson.dumps(theirs).decode())


class TestNumeric:
    def test_given_scalar_within_absolute_tolerance_when_compared_then_within_not_exact(self) -> None:
        verdict = numeric("0.5000001", "0.5000002")
        assert (verdict.exact, verdict.within) == (False, True)
        assert verdict.abs_diff == pytest.approx(1e-7)

    def test_given_relative_tolerance_when_large_numbers_then_within(self) -> None:
        verdict = numeric("1000000", "1000050", tolerance={"absolute": 0, "relative": 1e-4})
        assert verdict.within
        assert verdict.rel_diff == pytest.approx(50 / 1000050)

    def test_given_vector_with_one_column_out_of_tolerance_when_compared_then_that_column_named(self) -> None:
        verdict = numeric("0.1,0.2,0.3", "0.1,0.25,0.3")
        assert (verdict.exact, verdict.within, verdict.fields) == (False, False, ("[1]",))
        assert verdict.abs_diff == pytest.approx(0.05)

    def test_given_same_number_spelled_differently_when_compared_then_exact(self) -> None:
        assert numeric("1,2.50", "1.0,2.5") == (True, True, 0.0, 0.0, (), None, None, None)

    def test_given_different_lengths_when_compared_then_not_within(self) -> None:
        verdict = numeric("1,2,3", "1,2")
        assert not verdict.within
        assert "$" in verdict.fields

    def test_given_non_numeric_column_when_differs_then_field_named(self) -> None:
        assert numeric("1,cat", "1,dog").fields == ("[1]",)

    def test_given_nan_and_infinity_when_compared_then_no_distance_recorded(self) -> None:
        assert numeric("nan", "nan").within
        verdict = numeric("inf", "1")
        assert not verdict.within
        assert verdict.abs_diff == 0.0

    def test_given_ignored_column_when_it_differs_then_within(self) -> None:
        assert numeric("1,2,3", "1,9,3", ignorePaths=["[1]"]).exact

    def test_given_multi_row_csv_when_compared_then_rows_and_columns_named(self) -> None:
        verdict = numeric("1,2\n3,4", "1,2\n3,5")
        assert verdict.fields == ("[1][1]",)


class TestJsonDocuments:
    def test_given_reordered_keys_when_compared_then_exact(self) -> None:
        assert document({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}).exact

    def test_given_nested_numeric_noise_when_compared_then_within_with_max_difference(self) -> None:
        verdict = document({"p": [{"s": 0.5}, {"s": 0.25}]}, {"p": [{"s": 0.5000001}, {"s": 0.25}]})
        assert (verdict.exact, verdict.within) == (False, True)
        assert verdict.abs_diff == pytest.approx(1e-7)

    def test_given_differences_when_compared_then_every_path_named(self) -> None:
        verdict = document(
            {"label": "a", "meta": {"v": 1}, "items": [1, 2], "only_ours": 1},
            {"label": "b", "meta": {"v": "1"}, "items": [1, 3], "only_theirs": 2},
        )
        assert not verdict.within
        assert set(verdict.fields) == {"label", "meta.v", "items[1]", "only_ours", "only_theirs"}

    def test_given_ignore_list_when_paths_match_then_not_counted(self) -> None:
        verdict = document(
            {"id": "r1", "meta": {"took_ms": 3}, "items": [{"x": 1, "t": 5}], "score": 1},
            {"id": "r2", "meta": {"took_ms": 9}, "items": [{"x": 1, "t": 6}], "score": 1},
            ignorePaths=["id", "meta", "items[].t"],
        )
        assert verdict.exact

    def test_given_bool_and_number_when_compared_then_they_differ(self) -> None:
        assert document({"flag": True}, {"flag": 1}).fields == ("flag",)

    def test_given_type_change_at_root_when_compared_then_root_named(self) -> None:
        assert document([1], {"a": 1}).fields == ("$",)


def json_lines(documents: list[Any]) -> str:
    return "\n".join(orjson.dumps(document).decode() for document in documents)


def lines_compare(ours: list[Any], theirs: list[Any], encoding: str = "JSON", **overrides: Any) -> Verdict:
    """Two JSON Lines answers (application/jsonlines: one JSON document per line), as captured."""
    content_type = "application/jsonlines"
    ours_data, theirs_data = json_lines(ours), json_lines(theirs)
    if encoding == "BASE64":
        ours_data, theirs_data = b64(ours_data.encode()), b64(theirs_data.encode())
    comparator = ComparatorChoice(diff_config(**overrides))(encoding, content_type)
    return comparator.compare(
        encoding,
        decode_payload(encoding, ours_data, content_type),
        encoding,
        decode_payload(encoding, theirs_data, content_type),
    )


class TestJsonLines:
    """application/jsonlines answers hold one JSON document per line: they are compared document by
    document, each as the comparator would compare one JSON answer, with paths prefixed `[i]`."""

    def test_given_equal_documents_when_compared_then_exact(self) -> None:
        verdict = lines_compare(
            [{"label": "a", "score": 0.5}, {"label": "b"}], [{"score": 0.5, "label": "a"}, {"label": "b"}]
        )
        assert (verdict.exact, verdict.within, verdict.fields) == (True, True, ())

    def test_given_second_document_differs_when_compared_then_its_path_named(self) -> None:
        verdict = lines_compare([{"score": 0.5}, {"score": 0.25}], [{"score": 0.5}, {"score": 0.75}])
        assert (verdict.exact, verdict.within) == (False, False)
        assert verdict.fields == ("[1].score",)
        assert verdict.abs_diff == pytest.approx(0.5)

    def test_given_noise_in_every_document_when_compared_then_within_with_the_largest_difference(self) -> None:
        verdict = lines_compare([{"s": 0.5}, {"s": 0.25}], [{"s": 0.5000001}, {"s": 0.2500003}])
        assert (verdict.exact, verdict.within) == (False, True)
        assert verdict.abs_diff == pytest.approx(3e-7)

    @pytest.mark.parametrize(("ours", "theirs"), [(3, 2), (1, 0), (0, 2)])
    def test_given_different_document_counts_when_compared_then_a_named_mismatch_not_a_crash(
        self, ours: int, theirs: int
    ) -> None:
        verdict = lines_compare([{"n": i} for i in range(ours)], [{"n": i} for i in range(theirs)])
        assert (verdict.exact, verdict.within) == (False, False)
        assert verdict.fields == ("(document count)",)

    def test_given_classification_rule_when_compared_then_each_document_judged(self) -> None:
        rule: dict[str, Any] = {"classification": {"labelPath": "label", "scoresPath": "scores", "topK": 1}}
        agree = lines_compare(
            [{"label": "a", "scores": [0.9, 0.1]}, {"label": "b", "scores": [0.2, 0.8]}],
            [{"label": "a", "scores": [0.9, 0.1]}, {"label": "b", "scores": [0.2, 0.8]}],
            **rule,
        )
        assert (agree.exact, agree.label_agrees, agree.argmax_agrees, agree.top_k_overlap) == (True, True, True, 1.0)
        flipped = lines_compare(
            [{"label": "a", "scores": [0.9, 0.1]}, {"label": "b", "scores": [0.2, 0.8]}],
            [{"label": "a", "scores": [0.9, 0.1]}, {"label": "a", "scores": [0.8, 0.2]}],
            **rule,
        )
        assert (flipped.within, flipped.label_agrees, flipped.argmax_agrees) == (False, False, False)
        assert flipped.top_k_overlap == 0.5  # the mean over the documents
        assert "[1].label" in flipped.fields

    def test_given_ignore_paths_when_compared_then_they_apply_within_each_document(self) -> None:
        verdict = lines_compare(
            [{"id": "r1", "meta": {"took": 3}, "y": 1}, {"id": "r2", "meta": {"took": 4}, "y": 2}],
            [{"id": "x1", "meta": {"took": 9}, "y": 1}, {"id": "x2", "meta": {"took": 8}, "y": 2}],
            ignorePaths=["id", "meta.took"],
        )
        assert verdict.exact

    def test_given_base64_json_lines_when_compared_then_documents_compared(self) -> None:
        verdict = lines_compare([{"y": 1}, {"y": 2}], [{"y": 1}, {"y": 3}], encoding="BASE64")
        assert verdict.fields == ("[1].y",)

    def test_given_json_lines_when_auto_then_documents_compared_as_json(self) -> None:
        assert ComparatorChoice(diff_config())("JSON", "application/jsonlines; charset=utf-8").name == "json"

    def test_given_json_lines_when_rendering_then_each_document_redacted_on_its_line(self) -> None:
        shown = ExampleRenderer(("email",), 500)(
            "JSON", "application/jsonlines", '{"email":"a@b","n":1}\n{"email":"c@d","n":2}\n'
        )
        assert [orjson.loads(line) for line in shown.splitlines()] == [
            {"email": "***", "n": 1},
            {"email": "***", "n": 2},
        ]


class TestClassification:
    RULE: dict[str, Any] = {"classification": {"labelPath": "label", "scoresPath": "scores", "topK": 2}}  # noqa: RUF012

    def test_given_same_label_and_near_scores_when_compared_then_all_agree(self) -> None:
        verdict = document(
            {"label": "fraud", "scores": [0.1, 0.2, 0.7]},
            {"label": "fraud", "scores": [0.1000001, 0.2, 0.7]},
            **self.RULE,
        )
        assert (verdict.within, verdict.label_agrees, verdict.argmax_agrees, verdict.top_k_overlap) == (
            True,
            True,
            True,
            1.0,
        )

    def test_given_flipped_label_when_compared_then_disagreement_and_overlap(self) -> None:
        verdict = document(
            {"label": "fraud", "scores": [0.1, 0.2, 0.7]}, {"label": "legit", "scores": [0.1, 0.7, 0.2]}, **self.RULE
        )
        assert (verdict.within, verdict.label_agrees, verdict.argmax_agrees) == (False, False, False)
        assert verdict.top_k_overlap == 1.0  # the same two classes on top, in another order
        assert "label" in verdict.fields

    def test_given_top_k_partly_shared_when_compared_then_half_overlap(self) -> None:
        verdict = document({"scores": [0.5, 0.3, 0.2, 0.0]}, {"scores": [0.5, 0.0, 0.2, 0.3]}, **self.RULE)
        assert verdict.top_k_overlap == 0.5
        assert verdict.argmax_agrees

    def test_given_csv_scores_when_whole_row_is_the_vector_then_argmax_compared(self) -> None:
        verdict = numeric("0.2,0.8", "0.6,0.4", classification={"labelPath": None, "scoresPath": ""})
        assert verdict.argmax_agrees is False
        assert verdict.label_agrees is None

    def test_given_missing_scores_when_compared_then_scores_field_differs(self) -> None:
        verdict = document({"label": "a", "scores": [1, 0]}, {"label": "a"}, **self.RULE)
        assert not verdict.within
        assert "scores" in verdict.fields

    def test_given_extra_field_outside_rule_when_compared_then_within_but_not_exact(self) -> None:
        verdict = document(
            {"label": "a", "scores": [1.0, 0.0]}, {"label": "a", "scores": [1.0, 0.0], "x": 1}, **self.RULE
        )
        assert (verdict.exact, verdict.within) == (False, True)


class TestTextAndBinary:
    def test_given_case_and_spacing_differ_when_normalised_then_within(self) -> None:
        verdict = compare({}, "BASE64", "text/plain", b64(b"Hello  World"), b64(b"hello world"))
        assert (verdict.exact, verdict.within) == (False, True)

    def test_given_normalisation_off_when_case_differs_then_mismatch(self) -> None:
        verdict = compare({"normaliseText": False}, "BASE64", "text/plain", b64(b"Hello"), b64(b"hello"))
        assert not verdict.within

    def test_given_different_bytes_when_binary_then_mismatch(self) -> None:
        assert not compare({}, "BASE64", "image/png", b64(b"\x89PNG1"), b64(b"\x89PNG2")).within
        assert compare({}, "BASE64", "image/png", b64(b"\x89PNG1"), b64(b"\x89PNG1")).exact


class TestChoice:
    @pytest.mark.parametrize(
        ("encoding", "content_type", "name"),
        [
            ("JSON", "application/json", "json"),
            ("CSV", "text/csv; charset=utf-8", "numeric"),
            ("BASE64", "application/vnd.api+json", "json"),
            ("BASE64", "text/plain", "text"),
            ("BASE64", "application/x-npy", "binary"),
        ],
    )
    def test_given_auto_when_content_type_then_comparator(self, encoding: str, content_type: str, name: str) -> None:
        assert ComparatorChoice(diff_config())(encoding, content_type).name == name

    def test_given_classification_rule_when_auto_then_structured_answers_classified(self) -> None:
        choice = ComparatorChoice(diff_config(classification={"labelPath": "label"}))
        assert choice("JSON", "application/json").name == "classification"
        assert choice("BASE64", "image/png").name == "binary"

    def test_given_named_comparator_when_any_content_then_that_one(self) -> None:
        assert ComparatorChoice(diff_config(comparator="text"))("JSON", "application/json").name == "text"

    def test_given_parameters_when_media_type_then_stripped(self) -> None:
        assert media_type("Text/CSV ; charset=utf-8") == "text/csv"


class TestExamples:
    def test_given_redacted_keys_when_rendering_json_then_blanked_at_any_depth_and_by_path(self) -> None:
        render = ExampleRenderer(("email", "card.number", "items[].ssn"), max_chars=500)
        shown = render(
            "JSON",
            "application/json",
            '{"email":"a@b","user":{"email":"c@d"},"card":{"number":"4111","exp":"12/30"},"items":[{"ssn":"1","n":2}]}',
        )
        assert orjson.loads(shown) == {
            "email": "***",
            "user": {"email": "***"},
            "card": {"number": "***", "exp": "12/30"},
            "items": [{"ssn": "***", "n": 2}],
        }

    def test_given_redacted_column_when_rendering_csv_then_blanked(self) -> None:
        assert ExampleRenderer(("[0]",), 500)("CSV", "text/csv", "4111,2.5,3") == "***,2.5,3"

    def test_given_binary_when_rendering_then_only_a_digest(self) -> None:
        shown = ExampleRenderer((), 500)("BASE64", "application/x-npy", b64(b"secret bytes"))
        assert shown.startswith("<12 bytes, sha256 ")
        assert "secret" not in shown

    def test_given_text_and_a_redact_list_when_rendering_then_digest_not_text(self) -> None:
        shown = ExampleRenderer(("name",), 500)("BASE64", "text/plain", b64(b"name: Alice"))
        assert "Alice" not in shown

    def test_given_long_payload_when_rendering_then_clipped(self) -> None:
        shown = ExampleRenderer((), 64)("CSV", "text/csv", ",".join(["1.2345"] * 100))
        assert shown.endswith("chars)")
        assert len(shown) < 100

    def test_given_patterns_when_matching_then_names_paths_and_wildcards(self) -> None:
        matcher = PathMatcher(("email", "a.b", "xs[].y", "[2]"))
        assert matcher.matches("deep.email", "email")
        assert matcher.matches("a.b", "b")
        assert not matcher.matches("c.b", "b")
        assert matcher.matches("xs[12].y", "y")
        assert not matcher.matches("xs[1].z", "z")
        assert matcher.matches("[2]", None)
        assert not matcher.matches("[3]", None)
        assert not PathMatcher(())


class TestDiffConfig:
    def test_given_a_shadow_tests_comparison_settings_when_built_then_camel_case_accepted(self) -> None:
        config = DiffConfig.for_test(
            "t-1", "fraud-detector", "primary", "candidate", {"comparator": "json", "tolerance": {"absolute": 0.01}}
        )
        assert (config.comparator, config.tolerance.absolute, config.pairing_window_seconds) == ("json", 0.01, 120)

    @pytest.mark.parametrize(
        ("comparison", "problem"),
        [
            ({"shadowVariant": "primary"}, "must differ"),
            ({"comparator": "classification"}, "classification rule"),
            ({"ignorePaths": ["a..b"]}, "is not a path"),
            ({"classification": {"labelPath": None, "scoresPath": None}}, "labelPath, scoresPath"),
            ({"tolerance": {"absolute": -1}}, "greater than or equal"),
            ({"surprise": 1}, "Extra inputs"),
        ],
    )
    def test_given_bad_settings_when_built_then_the_problem_is_named(
        self, comparison: dict[str, Any], problem: str
    ) -> None:
        with pytest.raises(ValidationError, match=problem):
            DiffConfig.model_validate({**diff_config().model_dump(by_alias=True), **comparison})


class TestClassificationFastPath:
    """Top-level label and scores are compared on local names; the verdict must be the walk's, exactly."""

    @staticmethod
    def pairs() -> list[tuple[Any, Any]]:
        import random

        rng = random.Random(11)
        labels: list[Any] = ["fraud", "legit", None, 1, ["fraud"]]
        cases: list[tuple[Any, Any]] = [
            ({"label": "a", "scores": [0.0, 0.0]}, {"label": "a", "scores": [0.0, 0.0]}),
            ({"label": "a", "scores": [0.5, 0.5, 0.0]}, {"label": "a", "scores": [0.5, 0.5, 1e-9]}),  # ties
            ({"label": "a", "scores": [1, 0, 0]}, {"label": "a", "scores": [1.0, 0.0, 0.0]}),  # ints
            ({"label": "a", "scores": [0.1, float("nan")]}, {"label": "a", "scores": [0.1, float("nan")]}),
            ({"label": "a", "scores": [0.1, float("inf")]}, {"label": "a", "scores": [0.2, float("inf")]}),
            ({"label": "a", "scores": [0.1, True]}, {"label": "a", "scores": [0.1, True]}),
            ({"label": "a", "scores": []}, {"label": "a", "scores": []}),
            ({"label": "a", "scores": [0.1]}, {"label": "a", "scores": [0.1, 0.2]}),
            ({"label": "a", "scores": [0.1, 0.9], "extra": 1}, {"label": "a", "scores": [0.1, 0.9]}),
            ({"label": "a"}, {"label": "a", "scores": [0.1]}),
            ({"label": "a", "scores": [-0.5, 0.5]}, {"label": "a", "scores": [0.5, -0.5]}),
        ]
        for _ in range(400):
            size = rng.choice([1, 2, 3, 4, 6])
            ours = [rng.choice([0.0, rng.random(), round(rng.random(), 2)]) for _ in range(size)]
            theirs = [rng.choice([value, value + 1e-7, value - 1e-3, rng.random(), -value, 0.0]) for value in ours]
            label = rng.choice(labels)
            other = label if rng.random() < 0.7 else rng.choice(labels)
            cases.append(({"label": label, "scores": ours, "score": 0.5}, {"label": other, "scores": theirs}))
        return cases

    @pytest.mark.parametrize("top_k", [1, 2, 3, 10])
    def test_given_many_answers_when_compared_then_fast_path_verdict_equals_the_walk(self, top_k: int) -> None:
        choice = ComparatorChoice(
            diff_config(classification={"labelPath": "label", "scoresPath": "scores", "topK": top_k})
        )
        fast = choice("JSON", "application/json")
        slow = ComparatorChoice(
            diff_config(classification={"labelPath": "label", "scoresPath": "scores", "topK": top_k})
        )("JSON", "application/json")
        slow.top_level = False  # type: ignore[attr-defined]
        for ours, theirs in self.pairs():
            expected = slow.compare("JSON", ours, "JSON", theirs)
            verdict = fast.compare("JSON", ours, "JSON", theirs)
            assert repr(verdict) == repr(expected), (ours, theirs)  # repr: NaN-safe, and int vs float shows
