"""Requests AWS rejects and moto (5.2.5) accepts, rejected here as AWS documents.

- CloudWatch PutDashboard: `DashboardBody` "is a string in JSON format" (Dashboard Body Structure and
  Syntax); anything else fails with DashboardInvalidInputError, code InvalidParameterInput (PutDashboard
  API reference). moto checks this in its PutDashboard handler only: CloudFormation's
  AWS::CloudWatch::Dashboard stores any string. Checked in the backend, both paths reject it, and so a
  stack with a broken body fails to deploy, as `sam deploy` does.
- SNS Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less than
  100 characters long" (Publish API reference, Subject). moto lets a subject of exactly 100 characters
  through and accepts line breaks and control characters; both fail here with InvalidParameter. Every
  path that publishes goes through the backend: the API, PublishBatch, Step Functions' sns:publish task.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Self

SNS_SUBJECT_LIMIT = 100  # characters; a subject must be shorter


def subject_problem(subject: str) -> str | None:
    """Why SNS would refuse this subject, or None."""
    if len(subject) >= SNS_SUBJECT_LIMIT:
        return f"{len(subject)} characters (must be fewer than {SNS_SUBJECT_LIMIT})"
    if any(unicodedata.category(character) in ("Cc", "Zl", "Zp") for character in subject):
        return "contains a line break or control character"
    return None


@dataclass
class RequestValidation:
    _originals: dict[str, Any] = field(default_factory=dict)

    def install(self) -> Self:
        from moto.cloudwatch import models as cloudwatch_models
        from moto.cloudwatch.exceptions import DashboardInvalidInputError
        from moto.sns import models as sns_models
        from moto.sns.exceptions import InvalidParameterValue

        put_dashboard = cloudwatch_models.CloudWatchBackend.put_dashboard
        publish = sns_models.SNSBackend.publish
        self._originals = {"put_dashboard": put_dashboard, "publish": publish}

        def checked_put_dashboard(backend: Any, name: str, body: str) -> Any:  # noqa: ANN401
            try:
                json.loads(body)
            except (TypeError, ValueError) as exc:
                raise DashboardInvalidInputError(
                    f"Some part of the dashboard data is invalid: DashboardBody is not valid JSON ({exc})"
                ) from exc
            return put_dashboard(backend, name, body)

        def checked_publish(backend: Any, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:  # noqa: ANN401
            subject = kwargs.get("subject") if "subject" in kwargs else (args[1] if len(args) > 1 else None)
            if subject is not None and subject_problem(subject) is not None:
                raise InvalidParameterValue("Invalid parameter: Subject")
            result: str = publish(backend, message, arn, *args, **kwargs)
            return result

        cloudwatch_models.CloudWatchBackend.put_dashboard = checked_put_dashboard  # type: ignore[method-assign,assignment]
        sns_models.SNSBackend.publish = checked_publish  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if not self._originals:
            return
        from moto.cloudwatch import models as cloudwatch_models
        from moto.sns import models as sns_models

        cloudwatch_models.CloudWatchBackend.put_dashboard = self._originals["put_dashboard"]  # type: ignore[method-assign]
        sns_models.SNSBackend.publish = self._originals["publish"]  # type: ignore[method-assign]
        self._originals = {}

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()
