"""Settings and template.yaml agree: every function gets every variable Settings reads, and a tunable's
default in Settings is the value Globals gives it (the defaults serve tools and tests, not the functions)."""

from __future__ import annotations

from shadowscale.shared.settings import Settings

from tests.factories import DEPLOYED_ENVIRONMENT
from tests.static.deployed_template import sam_template, translated_template


def test_every_function_gets_every_variable_settings_reads() -> None:
    read = {str(field.alias) for field in Settings.model_fields.values()}
    functions = {
        logical_id: set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        for logical_id, resource in translated_template()["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert len(functions) == 6
    missing = {logical_id: sorted(read - given) for logical_id, given in functions.items() if read - given}
    assert not missing, f"functions without some settings: {missing}"


def test_every_default_in_settings_is_the_value_globals_gives() -> None:
    template = sam_template()
    given = template["Globals"]["Function"]["Environment"]["Variables"]
    parameters = template["Parameters"]
    differ: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        if field.is_required():
            continue
        value = given[field.alias]
        if isinstance(value, dict):  # !Ref to a parameter: its default
            value = parameters[value["Ref"]]["Default"]
        parsed = getattr(Settings.model_validate({**DEPLOYED_ENVIRONMENT, str(field.alias): str(value)}), name)
        if parsed != field.default:
            differ[str(field.alias)] = f"Settings {field.default!r}, Globals {value!r}"
    assert not differ, f"defaults that differ from template.yaml Globals: {differ}"


def test_the_stacks_resources_are_required() -> None:
    required = {str(field.alias) for field in Settings.model_fields.values() if field.is_required()}
    assert required == set(DEPLOYED_ENVIRONMENT)
