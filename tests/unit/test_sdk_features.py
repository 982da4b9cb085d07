"""The diff pipeline commits its state with conditional PutObject (If-Match / If-None-Match). botocore
sends those parameters only from 1.35.2 (IfNoneMatch) and 1.35.69 (IfMatch) on; an older SDK rejects them
with ParamValidationError, which would look like a failed commit on every batch. The S3 adapter checks its
client's own service model on first use and says what is wrong instead."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import botocore.session
import pytest
from botocore.model import ServiceModel
from shadowscale.response_diffs.store import S3DiffStore
from shadowscale.shared.errors import ConfigurationError
from shadowscale.shared.sdk_features import CONDITIONAL_WRITES, require_conditional_writes


def s3_model(without: tuple[str, ...] = ()) -> ServiceModel:
    """botocore's own S3 model, as an SDK that lacks the `without` PutObject parameters would have it."""
    data: dict[str, Any] = copy.deepcopy(botocore.session.get_session().get_service_data("s3"))
    shape = data["operations"]["PutObject"]["input"]["shape"]
    for name in without:
        del data["shapes"][shape]["members"][name]
    return ServiceModel(data, service_name="s3")


@dataclass
class RecordingS3:
    """Enough of an S3 client for commit(): its service model, and the writes it was asked for."""

    service_model: ServiceModel
    puts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def meta(self) -> SimpleNamespace:
        return SimpleNamespace(service_model=self.service_model)

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.puts.append(request)
        return {"ETag": '"e1"'}


class TestConditionalWrites:
    def test_given_this_sdk_when_checked_then_both_parameters_present(self) -> None:
        require_conditional_writes(s3_model())
        assert CONDITIONAL_WRITES == ("IfMatch", "IfNoneMatch")

    @pytest.mark.parametrize(
        ("missing", "named"),
        [(("IfMatch",), "IfMatch"), (("IfMatch", "IfNoneMatch"), "IfMatch, IfNoneMatch")],
    )
    def test_given_an_old_sdk_when_checked_then_configuration_error_names_what_and_why(
        self, missing: tuple[str, ...], named: str
    ) -> None:
        with pytest.raises(ConfigurationError) as raised:
            require_conditional_writes(s3_model(without=missing))
        message = str(raised.value)
        assert named in message
        assert "botocore" in message
        assert "1.35.69" in message

    def test_given_an_old_sdk_when_the_store_commits_then_it_refuses_before_writing(self) -> None:
        client = RecordingS3(s3_model(without=("IfMatch",)))
        store = S3DiffStore(cast(Any, client), "data")
        with pytest.raises(ConfigurationError, match="IfMatch"):
            store.commit("diffs/t-1/", b"manifest", expected_version="e0")
        assert client.puts == []

    def test_given_this_sdk_when_the_store_commits_twice_then_checked_once_and_written(self) -> None:
        client = RecordingS3(s3_model())
        store = S3DiffStore(cast(Any, client), "data")
        store.commit("diffs/t-1/", b"manifest", expected_version=None)
        client.service_model = s3_model(without=("IfMatch",))  # not looked at again
        store.commit("diffs/t-1/", b"manifest", expected_version="e1")
        assert [sorted(set(put) & {"IfMatch", "IfNoneMatch"}) for put in client.puts] == [["IfNoneMatch"], ["IfMatch"]]
