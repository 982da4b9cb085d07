"""The template as CloudFormation receives it after `sam deploy`, with plausible values for every name.

Static checks run on the SAM-translated template (what is deployed: SAM's roles, its policy templates
expanded, the managed policies) and resolve intrinsic functions to values of the right shape for
each resource type, so a JSON body or an ARN can be checked without an account or the local cloud.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from shadowscale_localcloud.stack import load_template

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
STAGE = "dev"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
# What a deployer passes for the parameters without a default (samconfig.toml's example values).
DEPLOY_PARAMETERS = {"Stage": STAGE, "EndpointNamePattern": "fraud-*"}

# Each resource type's name property: what its Ref and its ARN are built from.
NAME_PROPERTIES = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::Serverless::StateMachine": "Name",
}
# SAM's resource types, as the CloudFormation types they become (same Ref and attributes).
SAM_TYPES = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
}


class _AwsManagedPolicies:
    """samtranslator asks IAM for the ARNs of the AWS managed policies SAM attaches: answered offline."""

    def load(self) -> dict[str, str]:
        names = {
            "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
            "AWSXRayDaemonWriteAccess": "AWSXRayDaemonWriteAccess",
            "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
            "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
        }
        return {name: f"arn:aws:iam::aws:policy/{path}" for name, path in names.items()}


def sam_template() -> dict[str, Any]:
    """template.yaml as written (a fresh copy each call)."""
    return load_template(REPO)


@cache
def _translated_json() -> str:
    from samtranslator.translator.transform import transform

    template = sam_template()
    for logical_id, resource in template["Resources"].items():
        properties = resource.setdefault("Properties", {})
        code = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
        if resource["Type"] in code:
            properties[code[resource["Type"]]] = f"s3://artifacts/{logical_id}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = {"Bucket": "artifacts", "Key": f"{logical_id}.asl.json"}
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # samtranslator wants a region for its pseudo parameters
    return json.dumps(transform(template, dict(DEPLOY_PARAMETERS), _AwsManagedPolicies()))


def translated_template() -> dict[str, Any]:
    """The CloudFormation template SAM makes of template.yaml (a fresh copy each call)."""
    loaded: dict[str, Any] = json.loads(_translated_json())
    return loaded


class PlausibleValues:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::FindInMap to values shaped as AWS returns them."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str] | None = None) -> None:
        self._template = template
        defaults = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self._parameters = {**defaults, **DEPLOY_PARAMETERS, **(parameters or {})}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, argument)] = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(part) for part in self.resolve(parts))
            if key == "Fn::FindInMap":
                name, first, second = (self.resolve(part) for part in argument)
                return self._template["Mappings"][name][first][second]
        return {key: self.resolve(item) for key, item in value.items()}

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], self.resolve(argument[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(variables[token])
            if "." in token:
                return self.get_att(*token.split(".", 1))
            return self.ref(token)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def _kind(self, logical_id: str) -> str:
        kind = str(self._template["Resources"][logical_id]["Type"])
        return SAM_TYPES.get(kind, kind)

    def name(self, logical_id: str) -> str:
        resource = self._template["Resources"][logical_id]
        prop = NAME_PROPERTIES.get(resource["Type"]) or NAME_PROPERTIES.get(self._kind(logical_id))
        value = resource.get("Properties", {}).get(prop) if prop else None
        return str(self.resolve(value)) if value is not None else logical_id

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": f"shadowscale-{STAGE}",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        kind = self._kind(name)
        by_type = {
            "AWS::SQS::Queue": lambda: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name(name)}",
            "AWS::SNS::Topic": lambda: self.get_att(name, "TopicArn"),
            "AWS::KMS::Key": lambda: KEY_ID,
            "AWS::IAM::ManagedPolicy": lambda: f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}",
            "AWS::StepFunctions::StateMachine": lambda: self.get_att(name, "Arn"),
            "AWS::Lambda::LayerVersion": lambda: f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:layer:{self.name(name)}:1",
        }
        return by_type[kind]() if kind in by_type else self.name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self._kind(logical_id)
        name = self.name(logical_id)
        prefix = f"arn:{PARTITION}"
        arns = {
            "AWS::SQS::Queue": f"{prefix}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"{prefix}:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::Lambda::Function": f"{prefix}:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::DynamoDB::Table": f"{prefix}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::S3::Bucket": f"{prefix}:s3:::{name}",
            "AWS::KMS::Key": f"{prefix}:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}",
            "AWS::IAM::Role": f"{prefix}:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": f"{prefix}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::StepFunctions::StateMachine": f"{prefix}:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::Events::Rule": f"{prefix}:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::Scheduler::ScheduleGroup": f"{prefix}:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}",
        }
        if attribute in ("Arn", "TopicArn"):
            return arns[kind]
        if attribute in ("QueueName", "TopicName", "Name"):
            return name
        if attribute == "QueueUrl":
            return self.ref(logical_id)
        raise KeyError(f"no plausible value for Fn::GetAtt {logical_id}.{attribute} ({kind})")
