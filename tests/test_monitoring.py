"""`make doctor`'s CloudWatch part: alarm states and the last hour's figures, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.observe import NAMESPACE
from scripts.ops import monitoring


@pytest.fixture
def cloudwatch(app_env: dict[str, str]) -> Iterator[Any]:
    """A moto CloudWatch (app_env: fake credentials and region)."""
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def alarm(cloudwatch: Any, name: str, state: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"reason of {name}")


def test_the_stacks_alarms_are_listed_firing_first(cloudwatch: Any) -> None:
    alarm(cloudwatch, "prod-DeadLetterAlarm", "OK")
    alarm(cloudwatch, "prod-ResizeErrorsAlarm", "ALARM")
    alarm(cloudwatch, "other-DeadLetterAlarm", "ALARM")
    lines = monitoring.alarm_lines(cloudwatch, "prod")
    assert lines == [
        "ALARM             prod-ResizeErrorsAlarm: reason of prod-ResizeErrorsAlarm",
        "OK                prod-DeadLetterAlarm",
    ]


def test_a_stack_without_alarms_says_so(cloudwatch: Any) -> None:
    assert "no alarms named prod-*" in monitoring.alarm_lines(cloudwatch, "prod")[0]


def test_the_last_hours_figures_are_the_metrics_sums_and_maxima(cloudwatch: Any) -> None:
    now = datetime.now(UTC)
    data = [("Misses", 1), ("Misses", 1), ("Misses", 1), ("Refusals", 1), ("EventAge", 250)]
    data += [("EventAge", 4200), ("Misses", 1)]
    for name, value in data:
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {"MetricName": name, "Value": value, "Timestamp": now - timedelta(minutes=5)}
            ],
        )
    # Older than an hour: not counted.
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[{"MetricName": "Misses", "Value": 1, "Timestamp": now - timedelta(hours=2)}],
    )
    lines = monitoring.figure_lines(cloudwatch, now)
    shown = {line[:34].strip(): line[34:].strip() for line in lines}
    assert shown["misses"] == "4"
    assert shown["refusals"] == "1"
    assert shown["oldest event age"] == "4,200 ms"
    assert shown["events handled"] == "-"
    assert len(lines) == len(monitoring.FIGURES)


def test_the_summary_heads_both_parts(cloudwatch: Any) -> None:
    alarm(cloudwatch, "prod-DeadLetterAlarm", "OK")
    text = monitoring.summary(cloudwatch, "prod")
    assert "Alarms:\n  OK" in text
    assert f"The last hour ({NAMESPACE}):\n  misses" in text
