"""Settings fail fast: a stack resource that is missing or empty stops the function before any AWS call,
and the error names the variable."""

from __future__ import annotations

import pytest
from shadowscale.shared.errors import ConfigurationError
from shadowscale.shared.settings import Settings

from tests.factories import DEPLOYED_ENVIRONMENT

DEPLOYED = DEPLOYED_ENVIRONMENT


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in DEPLOYED.items() if key != name}


def test_given_every_resource_when_read_then_settings_carry_them_and_the_tunables_defaults() -> None:
    # GIVEN the environment a deployed function gets
    # WHEN it is read
    settings = Settings.from_environ(DEPLOYED)
    # THEN every resource is there, and the tunables have their defaults
    assert settings.data_bucket == DEPLOYED["DATA_BUCKET"]
    assert settings.policy_table == DEPLOYED["POLICY_TABLE"]
    assert settings.capture_diff_queue_url == DEPLOYED["CAPTURE_DIFF_QUEUE_URL"]
    assert settings.update_max_attempts == 5
    assert settings.dry_run is False


def test_given_no_data_bucket_when_read_then_the_error_names_data_bucket() -> None:
    with pytest.raises(ConfigurationError, match=r"DATA_BUCKET is not set") as raised:
        Settings.from_environ(without("DATA_BUCKET"))
    assert "NOTIFICATION_TOPIC_ARN" not in str(raised.value)  # only what is wrong


@pytest.mark.parametrize("value", ["", "   "])
def test_given_an_empty_data_bucket_when_read_then_the_error_names_data_bucket(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"DATA_BUCKET is empty"):
        Settings.from_environ({**DEPLOYED, "DATA_BUCKET": value})


@pytest.mark.parametrize("name", sorted(DEPLOYED))
def test_given_any_resource_missing_when_read_then_the_error_names_it(name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"\b{name} is not set"):
        Settings.from_environ(without(name))


def test_given_nothing_when_read_then_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ({})
    assert all(f"{name} is not set" in str(raised.value) for name in DEPLOYED)


def test_given_a_bad_tunable_when_read_then_the_error_names_it_and_says_why() -> None:
    with pytest.raises(ConfigurationError, match=r"UPDATE_MAX_ATTEMPTS: Input should be less than or equal to 20"):
        Settings.from_environ({**DEPLOYED, "UPDATE_MAX_ATTEMPTS": "99"})
