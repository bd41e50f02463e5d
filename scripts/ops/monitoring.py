"""What CloudWatch says of a stack: its alarms' states and the last hour's key figures.

`make doctor` prints it after its checks when pointed at a stack; the figures
are the service's own metrics (chalicelib/observe.py, docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.observe import NAMESPACE

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Figure:
    """One line of the summary: a metric and a statistic over the last hour."""

    label: str
    metric: str
    stat: str
    unit: str = ""


FIGURES = (
    Figure("misses", "Misses", "Sum"),
    Figure("API hits (variant already stored)", "Hits", "Sum"),
    Figure("refusals", "Refusals", "Sum"),
    Figure("5xx answers", "ServerErrors", "Sum"),
    Figure("render p50", "RenderTime", "p50", "ms"),
    Figure("render p99", "RenderTime", "p99", "ms"),
    Figure("request p99", "TotalTime", "p99", "ms"),
    Figure("bytes out", "BytesOut", "Sum", "B"),
    Figure("events handled", "Events", "Sum"),
    Figure("events failed", "EventFailures", "Sum"),
    Figure("events retried", "EventRetries", "Sum"),
    Figure("oldest event age", "EventAge", "Maximum", "ms"),
    Figure("presets rendered", "PresetsRendered", "Sum"),
    Figure("variants purged", "PurgedObjects", "Sum"),
)


def alarm_lines(cloudwatch: Any, stack: str) -> list[str]:
    """``STATE name: reason`` for each of the stack's alarms, the firing ones first."""
    found: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{stack}-"):
        found.extend(page["MetricAlarms"])
    if not found:
        return [f"no alarms named {stack}-* (deployed without infra/resources.json?)"]
    found.sort(key=lambda alarm: (alarm["StateValue"] == "OK", alarm["AlarmName"]))
    return [
        f"{alarm['StateValue']:<17} {alarm['AlarmName']}"
        + (f": {alarm.get('StateReason', '')}" if alarm["StateValue"] != "OK" else "")
        for alarm in found
    ]


def figure_lines(
    cloudwatch: Any, now: datetime | None = None, figures: Iterable[Figure] = FIGURES
) -> list[str]:
    """The last hour's figures, one per line; ``-`` where CloudWatch has no data."""
    end = now or datetime.now(UTC)
    wanted = list(figures)
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": figure.metric},
                "Period": int(HOUR.total_seconds()),
                "Stat": figure.stat,
            },
        }
        for index, figure in enumerate(wanted)
    ]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=end - HOUR, EndTime=end
    )
    values = {result["Id"]: result.get("Values", []) for result in answer["MetricDataResults"]}
    lines = []
    for index, figure in enumerate(wanted):
        found = values.get(f"m{index}", [])
        shown = f"{found[0]:,.0f}{' ' + figure.unit if figure.unit else ''}" if found else "-"
        lines.append(f"{figure.label:<34} {shown}")
    return lines


def summary(cloudwatch: Any, stack: str, now: datetime | None = None) -> str:
    """Both parts, headed, as `make doctor` prints them."""
    return "\n".join(
        [
            "\nAlarms:",
            *(f"  {line}" for line in alarm_lines(cloudwatch, stack)),
            f"\nThe last hour ({NAMESPACE}):",
            *(f"  {line}" for line in figure_lines(cloudwatch, now)),
        ]
    )
