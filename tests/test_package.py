"""`make package`: the merged SAM template and the Lambda zip, built once per session."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chalicelib.website import website_configuration
from scripts.ops import package
from scripts.ops.configure_bucket import public_read_policy

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = package.lambda_architecture()
WHEEL_MACHINE = package.WHEEL_MACHINE[ARCHITECTURE]

pytestmark = [
    pytest.mark.package,
    # The one reason not to run: chalice on Python 3.11 targets python3.11 and
    # builds Pillow from source, so there is nothing valid to inspect.
    pytest.mark.skipif(
        not package.python_is_supported(), reason="chalice package needs Python >= 3.12"
    ),
]


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "out"
    package.chalice_package(out, region="us-east-1")
    return out


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    return json.loads((packaged / "sam.json").read_text())


@pytest.fixture(scope="session")
def report(packaged: Path) -> package.ZipReport:
    return package.inspect_zip(packaged / "deployment.zip")


def resources(template: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def substitute(value: Any, names: Mapping[str, str]) -> Any:
    """Resolve Fn::Sub strings with ``names``, as CloudFormation would at deploy time."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], value["Fn::Sub"])
    if isinstance(value, dict):
        return {key: substitute(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, names) for item in value]
    return value


DEPLOYED = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "resizer",
    "RestAPI": "abc123",
    "BucketName": "pics",
    "ImageBucket": "pics",
    "Distribution.DomainName": "d111.cloudfront.net",
}


# --- cfn-lint ---------------------------------------------------------------------------


def test_template_passes_cfn_lint(packaged: Path) -> None:
    result = package.cfn_lint(packaged / "sam.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


# --- the zip ----------------------------------------------------------------------------


def test_pillow_wheel_is_manylinux_for_the_lambda_runtime(report: package.ZipReport) -> None:
    assert report.pillow_wheel_tags
    for tag in report.pillow_wheel_tags:
        match = re.fullmatch(rf"cp312-(cp312|abi3)-manylinux_2_([0-9]+)_{WHEEL_MACHINE}", tag)
        assert match, tag
        assert int(match.group(2)) <= package.LAMBDA_GLIBC[1], tag


def test_shared_objects_match_lambda_architecture_and_glibc(report: package.ZipReport) -> None:
    assert len(report.shared_objects) > 10
    assert set(report.shared_objects.values()) == {WHEEL_MACHINE}
    assert max(report.glibc_needed.values()) <= package.LAMBDA_GLIBC
    assert report.has(r"PIL/_imaging\.cpython-312-[^/]+\.so")
    for library in ("libjpeg", "libwebp", "libpng16"):
        assert report.has(rf"pillow\.libs/{library}-[^/]+\.so[0-9.]*"), library


def test_no_bytecode_for_another_python(report: package.ZipReport) -> None:
    assert report.pycache_tags <= {"cpython-312"}


def test_zip_has_the_app_and_no_dev_tools(report: package.ZipReport) -> None:
    assert "app.py" in report.names
    assert "chalicelib/imaging.py" in report.names
    # chalice bundles its small runtime (chalice/app.py); its CLI and deployer stay out.
    assert {name for name in report.names if name.startswith("chalice/")} == {
        "chalice/__init__.py",
        "chalice/app.py",
    }
    for unwanted in ("boto3/", "botocore/", "moto/", "pytest/", "PIL/tests", "scripts/", "tests/"):
        assert not any(name.startswith(unwanted) for name in report.names), unwanted


def test_package_checks_report_nothing_wrong(report: package.ZipReport) -> None:
    assert package.problems(report, ARCHITECTURE) == []


@pytest.mark.skipif(not package.same_machine(ARCHITECTURE), reason="zip built for another CPU")
def test_zip_imports_pillow_alone_and_renders(packaged: Path) -> None:
    result = package.smoke_test(packaged / "deployment.zip")
    assert result.returncode == 0, result.stderr
    pillow, scaled_webp = result.stdout.splitlines()
    assert pillow.split() == ["13.0.0", "image/jpeg", "320", "240", "jpg", "webp", "zlib"]
    library, *sizes = scaled_webp.split()
    assert re.fullmatch(r"pillow\.libs/libwebp-[0-9a-f]+\.so\.\d+(\.\d+)*", library), library
    assert sizes == ["160", "120", "False", "160", "120"]  # through libwebp, then without it


# --- the checks themselves catch what they are for ------------------------------------------


@pytest.mark.parametrize(
    ("tag", "fits"),
    [
        ("cp312-cp312-manylinux_2_28_x86_64", True),
        ("cp312-cp312-manylinux2014_x86_64", True),
        ("cp38-abi3-manylinux_2_17_x86_64", True),
        ("cp312-cp312-manylinux_2_35_x86_64", False),  # newer glibc than AL2023
        ("cp311-cp311-manylinux_2_28_x86_64", False),  # another Python
        ("cp312-cp312-manylinux_2_28_aarch64", False),  # another CPU
        ("cp312-cp312-linux_x86_64", False),  # built here, against this machine's libraries
        ("cp312-cp312-musllinux_1_2_x86_64", False),
    ],
)
def test_wheel_tag_fits(tag: str, fits: bool) -> None:
    assert package.wheel_tag_fits(tag, "cp312", "x86_64") is fits


def test_problems_names_each_fault() -> None:
    bad = package.ZipReport(
        pillow_wheel_tags=["cp312-cp312-linux_x86_64"],
        shared_objects={"PIL/_imaging.cpython-312-aarch64-linux-gnu.so": "aarch64"},
        glibc_needed={"PIL/_imaging.cpython-312-aarch64-linux-gnu.so": (2, 38)},
        pycache_tags={"cpython-311"},
        names=["PIL/_imaging.cpython-312-aarch64-linux-gnu.so"],
    )
    found = "\n".join(package.problems(bad, "x86_64"))
    for expected in ("linux_x86_64", "pillow.libs", "aarch64 code", "GLIBC_2.38", "cpython-311"):
        assert expected in found


# --- the template -----------------------------------------------------------------------


def test_function_settings(template: dict[str, Any]) -> None:
    [function] = resources(template, "AWS::Serverless::Function")
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == [ARCHITECTURE]
    assert function["MemorySize"] == 1769  # one full vCPU: see README, "Sizing"
    assert function["Timeout"] < 29  # API Gateway gives up at 29 s
    variables = substitute(function["Environment"]["Variables"], DEPLOYED)
    assert variables == {
        "IMAGE_BUCKET": {"Ref": "BucketName"},
        "PUBLIC_URL": "https://d111.cloudfront.net",
        "MAX_DIMENSION": "4096",
    }


def test_routing_rule_is_307_to_the_api_stage(template: dict[str, Any]) -> None:
    [bucket] = resources(template, "AWS::S3::Bucket")
    [api] = resources(template, "AWS::Serverless::Api")
    [rule] = bucket["WebsiteConfiguration"]["RoutingRules"]
    assert rule["RoutingRuleCondition"] == {"HttpErrorCodeReturnedEquals": "404"}
    redirect = substitute(rule["RedirectRule"], DEPLOYED)
    assert redirect["HttpRedirectCode"] == "307"
    assert redirect["ReplaceKeyPrefixWith"] == f"{api['StageName']}/resize/" == "api/resize/"
    assert redirect["HostName"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    # The same rule chalicelib.website builds for configure_bucket.py and the doctor.
    api_url = f"{redirect['Protocol']}://{redirect['HostName']}/{api['StageName']}"
    [expected] = website_configuration(api_url)["RoutingRules"]
    assert redirect == expected["Redirect"]
    assert rule["RoutingRuleCondition"] == expected["Condition"]


def test_bucket_is_public_read_and_listable_as_configure_bucket_makes_it(
    template: dict[str, Any],
) -> None:
    [bucket] = resources(template, "AWS::S3::Bucket")
    [policy] = resources(template, "AWS::S3::BucketPolicy")
    assert substitute(policy["PolicyDocument"], DEPLOYED) == public_read_policy("pics")
    access = bucket["PublicAccessBlockConfiguration"]
    assert access["BlockPublicPolicy"] is False
    assert access["RestrictPublicBuckets"] is False


def test_cloudfront_never_keeps_a_redirect(template: dict[str, Any]) -> None:
    [distribution] = resources(template, "AWS::CloudFront::Distribution")
    [cache_policy] = resources(template, "AWS::CloudFront::CachePolicy")
    config = distribution["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "http-only"
    dash, dot = substitute(origin["DomainName"]["Fn::If"][1:], DEPLOYED)
    assert dash == "pics.s3-website-eu-west-1.amazonaws.com"
    assert dot == "pics.s3-website.eu-west-1.amazonaws.com"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["CachePolicyId"] == {"Ref": "VariantCachePolicy"}
    assert "ForwardedValues" not in behaviour  # legacy settings would override the policy
    ttl = cache_policy["CachePolicyConfig"]
    # No Cache-Control (S3's 307) → DefaultTTL 0: not kept.  Variants say max-age=31536000.
    assert (ttl["MinTTL"], ttl["DefaultTTL"], ttl["MaxTTL"]) == (0, 0, 31536000)
    assert {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in config["CustomErrorResponses"]} == {
        403: 0,
        404: 0,
    }


def test_outputs_name_the_public_and_api_urls(template: dict[str, Any]) -> None:
    outputs = {name: substitute(o["Value"], DEPLOYED) for name, o in template["Outputs"].items()}
    assert outputs["PublicURL"] == "https://d111.cloudfront.net"
    assert outputs["ApiURL"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/api"
    assert outputs["WebsiteURL"] == {"Fn::GetAtt": ["ImageBucket", "WebsiteURL"]}
    assert {"BucketName", "DistributionId"} <= set(outputs)


def role_statements(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    [role] = resources(template, "AWS::IAM::Role")
    [policy] = role["Policies"]
    return substitute(policy["PolicyDocument"]["Statement"], DEPLOYED)


def test_iam_reads_originals_writes_variants_and_nothing_else(template: dict[str, Any]) -> None:
    granted = {
        (action, statement["Resource"])
        for statement in role_statements(template)
        for action in _as_list(statement["Action"])
    }
    assert granted == {
        ("s3:GetObject", "arn:aws:s3:::pics/*"),
        ("s3:PutObject", "arn:aws:s3:::pics/*"),
        # Without it S3 answers a missing original with 403, which the app reports as 503.
        ("s3:ListBucket", "arn:aws:s3:::pics"),
        *(
            (f"logs:{action}", LOG_GROUP)
            for action in ("CreateLogGroup", "CreateLogStream", "PutLogEvents")
        ),
    }
    [function] = resources(template, "AWS::Serverless::Function")
    assert substitute(function["FunctionName"], DEPLOYED) == "resizer-resize"


LOG_GROUP = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/resizer-resize:*"


def test_chalice_deploy_policy_grants_the_same_actions(template: dict[str, Any]) -> None:
    """policy-prod.json (plain `chalice deploy`) and the stack's role must not drift apart."""
    chalice_policy = json.loads((ROOT / ".chalice" / "policy-prod.json").read_text())

    def shape(statements: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        return [(s["Sid"], sorted(_as_list(s["Action"]))) for s in statements]

    assert shape(chalice_policy["Statement"]) == shape(role_statements(template))


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
