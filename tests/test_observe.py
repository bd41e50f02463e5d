"""The request and event lines: one per route call and per message, valid EMF, nothing secret."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib import observe, wiring
from tests.support import BUCKET, corpus
from tests.support.s3_events import sqs_event_for

# EMF's rules (CloudWatch's "Embedded metric format specification") checked on every line.
MAX_DIMENSIONS = 30
MAX_METRICS = 100
EMF_UNITS = {"Count", "Milliseconds", "Bytes"}


def lines(out: str) -> list[dict[str, Any]]:
    """The JSON lines among what was printed (the records; nothing else prints JSON)."""
    return [json.loads(text) for text in out.splitlines() if text.startswith("{")]


def check_emf(line: dict[str, Any]) -> None:
    """One line against the EMF specification's structure."""
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == observe.NAMESPACE
        assert len(directive["Metrics"]) <= MAX_METRICS
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= MAX_DIMENSIONS
            for name in dimension_set:
                assert isinstance(line[name], str)
                assert line[name]
        for metric in directive["Metrics"]:
            assert metric["Unit"] in EMF_UNITS
            assert isinstance(line[metric["Name"]], int | float)


def test_a_miss_a_hit_and_a_refusal_each_write_one_line(
    client: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    body = corpus.jpeg((640, 480))
    s3.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=body)
    capsys.readouterr()
    assert client.http.get("/resize/300x300/photos/cat.jpg").status_code == 307
    assert client.http.get("/resize/300x300/photos/cat.jpg").status_code == 307
    assert client.http.get("/resize/300xbogus/photos/cat.jpg").status_code == 400
    assert client.http.get("/health").status_code == 200
    miss, hit, refused, health = lines(capsys.readouterr().out)
    for line in (miss, hit, refused, health):
        check_emf(line)
        assert line["kind"] == "request"
        assert line["Requests"] == 1
    assert (miss["name"], miss["key"], miss["size"]) == ("resize", "photos/cat.jpg", "300x300")
    assert (miss["outcome"], miss["status"], miss["Misses"]) == ("miss", 307, 1)
    assert miss["bytes_in"] == len(body)
    stored = s3.get_object(Bucket=BUCKET, Key="300x300/photos/cat.jpg")["Body"].read()
    assert miss["bytes_out"] == miss["BytesOut"] == len(stored)
    assert {"s3_lookup", "render", "encode", "s3_claim_wait", "s3_store", "total"} <= set(
        miss["ms"]
    )
    assert miss["ms"]["encode"] <= miss["ms"]["render"] <= miss["ms"]["total"]
    assert miss["RenderTime"] == miss["ms"]["render"]
    assert (hit["outcome"], hit["Hits"]) == ("hit", 1)
    assert "Misses" not in hit
    assert "render" not in hit["ms"]
    assert (refused["outcome"], refused["status"], refused["Refusals"]) == ("invalid_size", 400, 1)
    assert refused["Code"] == "invalid_size"
    assert [["Code"]] in [d["Dimensions"] for d in refused["_aws"]["CloudWatchMetrics"]]
    assert "Refusals" not in miss
    assert "Code" not in miss
    assert health["name"] == "health"
    assert health["status"] == 200


def test_an_upload_form_its_signature_and_the_token_never_reach_the_line(
    client: Any, s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = uploads_configured(s3, capsys, monkeypatch)
    asked = {"filename": "cat.jpg", "content_type": "image/jpeg"}
    response, line = sent_with(client.http.post, "/uploads", token, asked, capsys)
    assert response.status_code == 201, response.body
    form = json.loads(response.body)
    assert (line["name"], line["status"]) == ("uploads.create", 201)
    secrets = [token, *(v for v in _leaves(form) if isinstance(v, str) and len(v) > 16)]
    assert len(secrets) > 2, "the form holds a policy and a signature"
    text = json.dumps(line)
    assert [secret for secret in secrets if secret in text] == []


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_an_event_writes_one_line_with_its_age_presets_and_retries(
    lifecycle_app: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    body = corpus.jpeg((320, 240))
    etag = s3.put_object(Bucket="originals", Key="photos/a.jpg", Body=body)["ETag"]
    event = sqs_event_for(lifecycle_app, "photos/a.jpg", etag, len(body))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    capsys.readouterr()
    lifecycle_app.lambda_.invoke("on_original_event", event)
    (line,) = lines(capsys.readouterr().out)
    check_emf(line)
    assert (line["kind"], line["name"], line["key"]) == ("event", "created", "photos/a.jpg")
    assert line["id"] == event["Records"][0]["messageId"]
    assert (line["outcome"], line["Events"], line["EventRetries"]) == ("applied", 1, 1)
    assert line["PresetsRendered"] == 1  # PRESET_SIZES=120x
    assert line["EventAge"] > 0  # the notification's eventTime is in the past
    assert "EventFailures" not in line


def test_a_failing_message_is_counted_as_a_failure(
    lifecycle_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    event = lifecycle_app.events.generate_sqs_event(message_bodies=["not json"])
    capsys.readouterr()
    answer = lifecycle_app.lambda_.invoke("on_original_event", event)
    assert len(answer.payload["batchItemFailures"]) == 1
    (line,) = lines(capsys.readouterr().out)
    check_emf(line)
    assert line["outcome"] == "failed: MalformedEvent"
    assert line["EventFailures"] == 1


def test_timing_points_outside_a_record_do_nothing() -> None:
    with observe.timed("render"):
        observe.add("Misses")
        observe.note(outcome="miss")
    assert observe.current() is None


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(KeyError), observe.recording(observe.Record("request", "x")):
        observe.add("Misspelt")


@pytest.mark.parametrize(("value", "level"), [("DEBUG", logging.DEBUG), ("error", logging.ERROR)])
def test_log_level_comes_from_the_environment(value: str, level: int) -> None:
    logger = logging.getLogger("chalicelib")
    before = logger.level
    try:
        observe.configure_logging({observe.LOG_LEVEL_VARIABLE: value})
        assert logger.level == level
        observe.configure_logging({observe.LOG_LEVEL_VARIABLE: "nonsense"})
        assert logger.level == level
    finally:
        logger.setLevel(before)


def test_a_focal_point_change_is_one_line_with_its_key_and_never_the_token(
    client: Any, s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = uploads_configured(s3, capsys, monkeypatch)
    path = "/meta/uploads/local/1/cat.jpg/focus"
    response, line = sent_with(client.http.put, path, token, {"focus": "0.5,0.5"}, capsys)
    assert response.status_code == 404, response.body  # no such original
    assert (line["name"], line["status"]) == ("meta.focus", 404)
    assert line["key"] == "uploads/local/1/cat.jpg"
    assert token not in json.dumps(line)


def uploads_configured(
    s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """The uploads routes set up with an originals bucket; their token, which no line may hold."""
    token = "a-token-that-must-not-be-logged"
    s3.create_bucket(Bucket="originals")
    monkeypatch.setenv("ORIGINALS_BUCKET", "originals")
    monkeypatch.setenv("UPLOAD_TOKEN", token)
    wiring.reset()
    capsys.readouterr()
    return token


def sent_with(
    send: Any, path: str, token: str, body: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[Any, dict[str, Any]]:
    """A JSON request with the upload token; its response and its one line (checked as EMF)."""
    response = send(
        path,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps(body).encode(),
    )
    (line,) = lines(capsys.readouterr().out)
    check_emf(line)
    return response, line
