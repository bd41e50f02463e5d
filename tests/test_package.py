"""`make package`: the merged SAM template and the Lambda zip, built once per session."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.routes import MAX_KEY_DEPTH, owner_paths
from scripts.ops import package
from scripts.ops.configure_bucket import PRIVATE_ACCESS_BLOCK, originals_cors, public_read_policy
from scripts.ops.website import website_configuration
from tests.support import ROOT
from tests.support.layout import module_path, runtime_modules

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


def resource(template: Mapping[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][name]["Properties"]


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
    "OriginalsBucketName": "pics-originals",
    "OriginalsBucket": "pics-originals",
    "MetadataTable.Arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/resizer-metadata",
    "EventsQueue.Arn": "arn:aws:sqs:eu-west-1:123456789012:resizer-events",
    "Distribution": "E111",
    "Distribution.DomainName": "d111.cloudfront.net",
    "Dashboard": "resizer",
    "UserPool": "eu-west-1_P",
    "UserPoolDomain": "images-1234",
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


def test_zip_holds_exactly_the_modules_the_functions_import(report: package.ZipReport) -> None:
    shipped = {name for name in report.names if name.startswith("chalicelib/")}
    assert shipped == {str(module_path(module).relative_to(ROOT)) for module in runtime_modules()}


def test_zip_has_the_app_and_no_dev_tools(report: package.ZipReport) -> None:
    assert "app.py" in report.names
    # chalice bundles its small runtime (chalice/app.py); its CLI and deployer stay out.
    assert {name for name in report.names if name.startswith("chalice/")} == {
        "chalice/__init__.py",
        "chalice/app.py",
    }
    for unwanted in ("boto3/", "botocore/", "moto/", "pytest/", "PIL/tests", "scripts/", "tests/"):
        assert not any(name.startswith(unwanted) for name in report.names), unwanted
    # The X-Ray SDK is shipped (TRACE_AWS_CALLS); the botocore it depends on is the runtime's.
    for wanted in ("aws_xray_sdk/core/patcher.py", "wrapt/__init__.py"):
        assert wanted in report.names


def test_what_the_runtime_provides_is_dropped_from_the_zip(tmp_path: Path) -> None:
    zip_path = tmp_path / "deployment.zip"
    names = [
        "app.py",
        "aws_xray_sdk/core/patcher.py",
        "botocore/client.py",
        "botocore-1.44.5.dist-info/METADATA",
        "dateutil/parser/_parser.py",
        "python_dateutil-2.9.0.dist-info/METADATA",
        "six.py",
        "urllib3/__init__.py",
        "jmespath/__init__.py",
    ]
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name in names:
            archive.writestr(name, "x")
    dropped = package.drop_runtime_packages(zip_path)
    assert zipfile.ZipFile(zip_path).namelist() == ["app.py", "aws_xray_sdk/core/patcher.py"]
    assert len(dropped) == 7
    assert package.drop_runtime_packages(zip_path) == []


def test_package_checks_report_nothing_wrong(report: package.ZipReport) -> None:
    assert package.problems(report, ARCHITECTURE) == []


@pytest.mark.skipif(not package.same_machine(ARCHITECTURE), reason="zip built for another CPU")
def test_zip_imports_pillow_alone_and_renders(packaged: Path) -> None:
    result = package.smoke_test(packaged / "deployment.zip")
    assert result.returncode == 0, result.stderr
    pillow, scaled_webp, heic = result.stdout.splitlines()
    assert pillow.split() == ["13.0.0", "image/jpeg", "320", "240", "jpg", "webp", "zlib"]
    library, *sizes = scaled_webp.split()
    assert re.fullmatch(r"pillow\.libs/libwebp-[0-9a-f]+\.so\.\d+(\.\d+)*", library), library
    assert sizes == ["160", "120", "False", "160", "120"]  # through libwebp, then without it
    assert heic.split() == ["1.8.1", "image/jpeg", "32", "24"]  # pillow-heif from the zip


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
    for expected in (
        "linux_x86_64",
        "pillow.libs",
        "no pillow_heif-",
        "pillow_heif.libs",
        "aarch64 code",
        "GLIBC_2.38",
        "cpython-311",
    ):
        assert expected in found


# --- the template -----------------------------------------------------------------------


def test_function_settings(template: dict[str, Any]) -> None:
    function = resource(template, "APIHandler")
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == [ARCHITECTURE]
    assert function["MemorySize"] == 1769  # one full vCPU: see docs/deploy.md
    assert function["Timeout"] < 29  # API Gateway gives up at 29 s
    variables = substitute(function["Environment"]["Variables"], DEPLOYED)
    cors = variables.pop("CORS_ORIGINS")
    for sign_in in ("OIDC_ISSUER", "OIDC_CLIENT_ID"):  # see the sign-in tests below
        variables.pop(sign_in)
    assert variables == {
        "IMAGE_BUCKET": {"Ref": "BucketName"},
        "ORIGINALS_BUCKET": {"Ref": "OriginalsBucketName"},
        "PUBLIC_URL": "https://d111.cloudfront.net",
        "MAX_DIMENSION": "4096",
        "METADATA_TABLE": {"Ref": "MetadataTable"},
        "TRACE_AWS_CALLS": {"Fn::If": ["TracingActive", "true", "false"]},
    }
    # The page origins the API answers CORS for are the ones the originals bucket allows.
    allowed = resource(template, "OriginalsBucket")["CorsConfiguration"]["CorsRules"][0]
    assert cors == {"Fn::Join": [",", substitute(allowed["AllowedOrigins"], DEPLOYED)]}


def test_routing_rule_is_307_to_the_api_stage(template: dict[str, Any]) -> None:
    bucket = resource(template, "ImageBucket")
    [api] = resources(template, "AWS::Serverless::Api")
    [rule] = bucket["WebsiteConfiguration"]["RoutingRules"]
    assert rule["RoutingRuleCondition"] == {"HttpErrorCodeReturnedEquals": "404"}
    redirect = substitute(rule["RedirectRule"], DEPLOYED)
    assert redirect["HttpRedirectCode"] == "307"
    assert redirect["ReplaceKeyPrefixWith"] == f"{api['StageName']}/resize/" == "api/resize/"
    assert redirect["HostName"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    # The same rule scripts.ops.website builds for configure_bucket.py and the doctor.
    api_url = f"{redirect['Protocol']}://{redirect['HostName']}/{api['StageName']}"
    [expected] = website_configuration(api_url)["RoutingRules"]
    assert redirect == expected["Redirect"]
    assert rule["RoutingRuleCondition"] == expected["Condition"]


def test_variants_are_public_read_never_listable_as_configure_bucket_makes_them(
    template: dict[str, Any],
) -> None:
    bucket = resource(template, "ImageBucket")
    policy = resource(template, "ImageBucketPolicy")
    assert substitute(policy["PolicyDocument"], DEPLOYED) == public_read_policy("pics")
    access = bucket["PublicAccessBlockConfiguration"]
    assert access["BlockPublicPolicy"] is False
    assert access["RestrictPublicBuckets"] is False


def anonymous_grants(template: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Every (action, resource) any bucket policy allows to everyone."""
    return [
        (action, statement["Resource"])
        for policy in resources(template, "AWS::S3::BucketPolicy")
        for statement in substitute(policy["PolicyDocument"], DEPLOYED)["Statement"]
        if statement["Effect"] == "Allow" and statement["Principal"] in ("*", {"AWS": "*"})
        for action in _as_list(statement["Action"])
    ]


def test_anyone_may_read_variants_and_do_nothing_else(template: dict[str, Any]) -> None:
    assert anonymous_grants(template) == [("s3:GetObject", "arn:aws:s3:::pics/*")]


def test_originals_bucket_is_private_kept_and_takes_form_posts(template: dict[str, Any]) -> None:
    originals = template["Resources"]["OriginalsBucket"]
    assert originals["DeletionPolicy"] == originals["UpdateReplacePolicy"] == "Retain"
    properties = originals["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == PRIVATE_ACCESS_BLOCK
    assert "WebsiteConfiguration" not in properties
    [rule] = properties["CorsConfiguration"]["CorsRules"]
    origins = substitute(rule["AllowedOrigins"], DEPLOYED)
    # By default the page's origin is the distribution's own.
    assert origins["Fn::If"][0] == "CorsOriginsGiven"
    assert origins["Fn::If"][2] == ["https://d111.cloudfront.net"]
    [wanted] = originals_cors(["https://d111.cloudfront.net"])["CORSRules"]
    # CloudFormation spells S3's CORS fields its own way.
    assert {
        "AllowedOrigins": origins["Fn::If"][2],
        "AllowedMethods": rule["AllowedMethods"],
        "AllowedHeaders": rule["AllowedHeaders"],
        "ExposeHeaders": rule["ExposedHeaders"],
        "MaxAgeSeconds": rule["MaxAge"],
    } == wanted
    [deny] = resource(template, "OriginalsBucketPolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_uploads_need_a_user_pool_token_in_the_stack(template: dict[str, Any]) -> None:
    body = resource(template, "RestAPI")["DefinitionBody"]
    authorizer = body["securityDefinitions"]["Uploaders"]
    assert authorizer["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    [provider] = authorizer["x-amazon-apigateway-authorizer"]["providerARNs"]
    assert provider == {
        "Fn::If": ["CreateUserPool", {"Fn::GetAtt": ["UserPool", "Arn"]}, {"Ref": "UserPoolArn"}]
    }
    uploads = body["paths"]["/uploads"]
    assert uploads["post"]["security"] == [{"Uploaders": []}]
    # Chalice's own route is still there under the merged security, and the preflight is open.
    assert "x-amazon-apigateway-integration" in uploads["post"]
    assert "security" not in uploads["options"]
    # DELETE /uploads/<key>, every key depth, takes the same token; its preflight is open.
    owner = owner_paths()
    assert len(owner) == MAX_KEY_DEPTH
    for path in owner:
        assert body["paths"][path]["delete"]["security"] == [{"Uploaders": []}], path
        assert "x-amazon-apigateway-integration" in body["paths"][path]["delete"], path
        assert "security" not in body["paths"][path]["options"], path
    for path, methods in body["paths"].items():
        secured = (
            {"post", "get"}
            if path == "/uploads"
            else {"delete"}
            if path in owner
            else {"put"}  # the owner's PUT /meta/<key>/focus; never a GET of /meta
            if path.startswith("/meta/")
            else set()
        )
        for method, operation in methods.items():
            if isinstance(operation, dict) and method not in secured:
                assert "security" not in operation, (path, method)
    pool = template["Resources"]["UserPool"]
    assert pool["Condition"] == "CreateUserPool"
    # Only admins add users unless the SelfSignUp parameter says otherwise (default: off).
    only_admins = pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]
    assert only_admins == {"Fn::If": ["SelfSignUpOn", False, True]}


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


def test_the_auto_format_function_runs_before_the_cache_on_every_request(
    template: dict[str, Any],
) -> None:
    """The repository's function file, inline, on the default behaviour as viewer-request."""
    function = resource(template, package.FUNCTION_RESOURCE)
    assert function["FunctionCode"] == package.VIEWER_REQUEST.read_text()
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["AutoPublish"] is True
    behaviour = resource(template, "Distribution")["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["FunctionAssociations"] == [
        {
            "EventType": "viewer-request",
            "FunctionARN": {
                "Fn::GetAtt": [package.FUNCTION_RESOURCE, "FunctionMetadata.FunctionARN"]
            },
        }
    ]
    # The cache key stays the path: no header (Accept) in it, nothing to Vary on.
    [cache_policy] = resources(template, "AWS::CloudFront::CachePolicy")
    keyed = cache_policy["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keyed["HeadersConfig"] == {"HeaderBehavior": "none"}


def test_outputs_name_the_public_and_api_urls(template: dict[str, Any]) -> None:
    outputs = {name: substitute(o["Value"], DEPLOYED) for name, o in template["Outputs"].items()}
    assert outputs["PublicURL"] == "https://d111.cloudfront.net"
    assert outputs["ApiURL"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/api"
    assert outputs["WebsiteURL"] == {"Fn::GetAtt": ["ImageBucket", "WebsiteURL"]}
    assert {"BucketName", "DistributionId", "UserPoolId", "UserPoolClientId"} <= set(outputs)
    assert outputs["OriginalsBucketName"] == {"Ref": "OriginalsBucket"}
    assert outputs["UploadsURL"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/api/uploads"


def role_statements(template: Mapping[str, Any], role: str = "ApiHandlerRole") -> list[Any]:
    [policy] = resource(template, role)["Policies"]
    return substitute(policy["PolicyDocument"]["Statement"], DEPLOYED)


def grants(template: Mapping[str, Any], role: str) -> set[tuple[str, str]]:
    return {
        (action, str(resource))
        for statement in role_statements(template, role)
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }


def test_iam_reads_originals_writes_variants_and_nothing_else(template: dict[str, Any]) -> None:
    assert grants(template, "ApiHandlerRole") == {
        ("s3:GetObject", "arn:aws:s3:::pics-originals/*"),
        # Without it S3 answers a missing original with 403, which the app reports as 503.
        ("s3:ListBucket", "arn:aws:s3:::pics-originals"),
        # Presigned upload forms carry the function's own permission, for uploads/ only.
        ("s3:PutObject", "arn:aws:s3:::pics-originals/uploads/*"),
        # DELETE /uploads/<key>: the owner's own originals, under uploads/ only.
        ("s3:DeleteObject", "arn:aws:s3:::pics-originals/uploads/*"),
        ("s3:GetObject", "arn:aws:s3:::pics/*"),
        ("s3:PutObject", "arn:aws:s3:::pics/*"),
        # A budget slot is given back when its render fails; nothing else is deleted.
        ("s3:DeleteObject", "arn:aws:s3:::pics/_variants/*"),
        ("s3:ListBucket", "arn:aws:s3:::pics"),
        *(
            (f"logs:{action}", LOG_GROUP)
            for action in ("CreateLogGroup", "CreateLogStream", "PutLogEvents")
        ),
        ("dynamodb:GetItem", str(TABLE_ARN)),
        ("dynamodb:Query", str(TABLE_ARN)),
        ("dynamodb:GetItem", INDEX_ARN),
        ("dynamodb:Query", INDEX_ARN),
    }
    function = resource(template, "APIHandler")
    assert substitute(function["FunctionName"], DEPLOYED) == "resizer-resize"


TABLE_ARN = {"Fn::GetAtt": ["MetadataTable", "Arn"]}
INDEX_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/resizer-metadata/index/by_uploader"


def test_the_events_function_may_delete_variants_never_originals(
    template: dict[str, Any],
) -> None:
    granted = grants(template, "OnOriginalEventRole")
    assert {resource for action, resource in granted if action == "s3:DeleteObject"} == {
        "arn:aws:s3:::pics/*"
    }
    originals = {action for action, resource in granted if "pics-originals" in resource}
    assert originals == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    # It writes one object there: the policy document it activated (docs/watermarks.md).
    writes = {resource for action, resource in granted if action == "s3:PutObject"}
    assert writes == {"arn:aws:s3:::pics/*", "arn:aws:s3:::pics-originals/_policy/active.json"}
    assert ("sns:Publish", str({"Ref": "EventsTopic"})) in granted
    # Lambda's poller needs the first three; the handler sends its own delayed rechecks.
    assert {action for action, _ in granted if action.startswith("sqs:")} == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    }
    assert not any(action.endswith("*") for action, _ in granted)


LOG_GROUP = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/resizer-resize:*"


@pytest.mark.parametrize(
    ("policy_file", "role"),
    [("policy-prod.json", "ApiHandlerRole"), ("policy-events.json", "OnOriginalEventRole")],
)
def test_chalice_deploy_policies_grant_the_same_actions(
    template: dict[str, Any], policy_file: str, role: str
) -> None:
    """The .chalice policies (plain `chalice deploy`) and the stack's roles must not drift."""
    chalice_policy = json.loads((ROOT / ".chalice" / policy_file).read_text())

    def shape(statements: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        return [(s["Sid"], sorted(_as_list(s["Action"]))) for s in statements]

    assert shape(chalice_policy["Statement"]) == shape(role_statements(template, role))


# --- the originals' event pipeline ----------------------------------------------------------


def test_originals_events_go_through_a_queue_with_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    notifications = resource(template, "OriginalsBucket")["NotificationConfiguration"]
    queue_arn = {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert notifications["QueueConfigurations"] == [
        {"Event": "s3:ObjectCreated:*", "Queue": queue_arn},
        {"Event": "s3:ObjectRemoved:*", "Queue": queue_arn},
    ]
    # S3 checks it may send before it takes the configuration.
    assert template["Resources"]["OriginalsBucket"]["DependsOn"] == ["EventsQueuePolicy"]
    assert "NotificationConfiguration" not in resource(template, "ImageBucket")
    queue = resource(template, "EventsQueue")
    function = resource(template, "OnOriginalEvent")
    # AWS: at least the function's timeout, 6x advised, or messages are handled twice.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]
    }
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    [statement] = resource(template, "EventsQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert substitute(statement["Condition"], DEPLOYED)["ArnEquals"] == {
        "aws:SourceArn": "arn:aws:s3:::pics-originals"
    }


def test_the_event_source_caps_concurrency_and_reports_partial_failures(
    template: dict[str, Any],
) -> None:
    [source] = resource(template, "OnOriginalEvent")["Events"].values()
    assert source["Type"] == "SQS"
    properties = source["Properties"]
    assert substitute(properties["Queue"], DEPLOYED) == DEPLOYED["EventsQueue.Arn"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= properties["ScalingConfig"]["MaximumConcurrency"] <= 1000
    assert properties["BatchSize"] == 10
    # Reserved concurrency would throttle and bounce messages; the cap above is the one.
    assert "ReservedConcurrentExecutions" not in resource(template, "OnOriginalEvent")


def test_the_metadata_table_is_the_one_the_code_creates_locally(template: dict[str, Any]) -> None:
    from chalicelib.originals.metadata import TABLE_SCHEMA

    table = template["Resources"]["MetadataTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert {name: table["Properties"][name] for name in TABLE_SCHEMA} == TABLE_SCHEMA
    variables = resource(template, "OnOriginalEvent")["Environment"]["Variables"]
    assert variables["METADATA_TABLE"] == {"Ref": "MetadataTable"}
    assert variables["NOTIFY_TOPIC_ARN"] == {"Ref": "EventsTopic"}
    assert variables["CDN_DISTRIBUTION_ID"] == {"Ref": "Distribution"}
    assert variables["EVENTS_QUEUE_URL"] == {"Ref": "EventsQueue"}


def test_listing_uploads_needs_a_user_pool_token_too(template: dict[str, Any]) -> None:
    uploads = resource(template, "RestAPI")["DefinitionBody"]["paths"]["/uploads"]
    assert uploads["get"]["security"] == [{"Uploaders": []}]


def test_every_focal_point_route_needs_a_user_pool_token(template: dict[str, Any]) -> None:
    paths = resource(template, "RestAPI")["DefinitionBody"]["paths"]
    puts = {path: methods["put"] for path, methods in paths.items() if "put" in methods}
    assert len(puts) == MAX_KEY_DEPTH - 1  # a key of 1 to 31 segments, then "focus"
    for path, operation in puts.items():
        assert operation["security"] == [{"Uploaders": []}], path
        assert "x-amazon-apigateway-integration" in operation, path  # chalice's own route


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- alarms, dashboard, tracing (docs/operations.md) ------------------------------------

MONITORED = {
    **DEPLOYED,
    "APIHandler": "resizer-resize",
    "OnOriginalEvent": "resizer-events",
    "EventsQueue.QueueName": "resizer-events",
    "EventsDeadLetterQueue.QueueName": "resizer-events-dlq",
}


def alarms(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: item["Properties"]
        for name, item in template["Resources"].items()
        if item["Type"] == "AWS::CloudWatch::Alarm"
    }


def watched(alarm: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """An alarm's namespace, metric and dimensions (the first metric of a math alarm)."""
    metric = alarm["Metrics"][0]["MetricStat"]["Metric"] if "Metrics" in alarm else alarm
    dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
    return metric["Namespace"], metric["MetricName"], dimensions


def test_every_alarm_notifies_the_alarm_topic_which_may_mail_someone(
    template: dict[str, Any],
) -> None:
    found = alarms(template)
    assert len(found) == 10
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
    assert template["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "AlarmEmailGiven"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


def test_alarms_watch_this_stacks_queues_functions_and_api(template: dict[str, Any]) -> None:
    from chalicelib.observe import NAMESPACE

    found = {name: watched(alarm) for name, alarm in alarms(template).items()}
    resolved = {name: substitute(dims, MONITORED) for name, (_, _, dims) in found.items()}
    events_queue = {"QueueName": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}
    assert found["DeadLetterAlarm"][:2] == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert resolved["DeadLetterAlarm"] == {
        "QueueName": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}
    }
    assert found["EventsQueueAgeAlarm"] == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        events_queue,
    )
    assert found["EventAgeAlarm"] == (NAMESPACE, "EventAge", {})
    for function, label in (("APIHandler", "Resize"), ("OnOriginalEvent", "Events")):
        for metric in ("Errors", "Throttles", "Duration"):
            assert found[f"{label}{metric}Alarm"] == (
                "AWS/Lambda",
                metric,
                {"FunctionName": {"Ref": function}},
            )
        # Near the timeout: 80% of the function's own, in ms.
        timeout = resource(template, function)["Timeout"]
        assert alarms(template)[f"{label}DurationAlarm"]["Threshold"] == timeout * 800
    # The API's metrics are named by its title and stage.
    api = resource(template, "RestAPI")
    assert found["Api5xxAlarm"] == (
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": api["DefinitionBody"]["info"]["title"], "Stage": api["StageName"]},
    )


def test_the_dashboard_shows_every_metric_the_functions_emit(template: dict[str, Any]) -> None:
    from chalicelib.observe import NAMESPACE, UNITS

    body = json.loads(substitute(resource(template, "Dashboard")["DashboardBody"], MONITORED))
    shown = {
        (row[0], row[1])
        for widget in body["widgets"]
        for row in widget["properties"]["metrics"]
        if isinstance(row[0], str)
    }
    assert {(NAMESPACE, name) for name in UNITS} <= shown
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in shown
    rows = [row for widget in body["widgets"] for row in widget["properties"]["metrics"]]
    assert ["AWS/Lambda", "Errors", "FunctionName", "resizer-resize", {"stat": "Sum"}] in rows
    assert any(f"{{{NAMESPACE},Code}}" in str(row) for row in rows), "refusals by code"
    url = substitute(template["Outputs"]["DashboardURL"]["Value"], DEPLOYED)
    assert url.endswith("/cloudwatch/home?region=eu-west-1#dashboards:name=resizer")
    assert template["Outputs"]["AlarmTopicARN"]["Value"] == {"Ref": "AlarmTopic"}


def test_tracing_is_a_parameter_off_by_default_and_may_write_traces_when_on(
    template: dict[str, Any],
) -> None:
    assert template["Parameters"]["Tracing"]["Default"] == "PassThrough"
    assert template["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    for function in ("APIHandler", "OnOriginalEvent"):
        assert resource(template, function)["Tracing"] == {"Ref": "Tracing"}
        # The functions patch botocore (AWS calls as subsegments) only when tracing is on.
        variables = resource(template, function)["Environment"]["Variables"]
        assert variables["TRACE_AWS_CALLS"] == {"Fn::If": ["TracingActive", "true", "false"]}
    assert resource(template, "RestAPI")["TracingEnabled"] == {
        "Fn::If": ["TracingActive", True, False]
    }
    policy = template["Resources"]["TracingPolicy"]
    assert policy["Condition"] == "TracingActive"
    assert policy["Properties"]["Roles"] == [
        {"Ref": "ApiHandlerRole"},
        {"Ref": "OnOriginalEventRole"},
    ]


# --- sign-in: Cognito's hosted UI ---------------------------------------------------------


def test_the_page_signs_in_with_a_public_code_flow_client_returning_to_it(
    template: dict[str, Any],
) -> None:
    client = resource(template, "UserPoolClient")
    assert client["GenerateSecret"] is False  # a public client: PKCE, no secret in the page
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]  # never implicit
    assert "openid" in client["AllowedOAuthScopes"]
    # The page's redirect_uri is its own address: the site root (the website's index
    # document) or /index.html, as publish_page prints it; both are registered.
    page = ["https://d111.cloudfront.net/", "https://d111.cloudfront.net/index.html"]
    assert substitute(client["CallbackURLs"], DEPLOYED) == page
    assert substitute(client["LogoutURLs"], DEPLOYED) == page


def test_the_hosted_ui_has_a_domain_and_the_issuer_is_an_output(template: dict[str, Any]) -> None:
    domain = template["Resources"]["UserPoolDomain"]
    assert domain["Type"] == "AWS::Cognito::UserPoolDomain"
    assert domain["Properties"]["UserPoolId"] == {"Ref": "UserPool"}
    outputs = template["Outputs"]
    issuer = substitute(outputs["SignInIssuer"]["Value"], DEPLOYED)
    assert issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_P"
    hosted_ui = substitute(outputs["HostedUiURL"]["Value"], DEPLOYED)
    assert hosted_ui == "https://images-1234.auth.eu-west-1.amazoncognito.com"


def test_the_function_verifies_the_pools_tokens_itself_too(template: dict[str, Any]) -> None:
    """Behind API Gateway's authorizer, and on any route it does not guard."""
    variables = resource(template, "APIHandler")["Environment"]["Variables"]
    issuer = template["Outputs"]["SignInIssuer"]["Value"]
    assert variables["OIDC_ISSUER"] == {"Fn::If": ["CreateUserPool", issuer, ""]}
    assert variables["OIDC_CLIENT_ID"] == {
        "Fn::If": ["CreateUserPool", {"Ref": "UserPoolClient"}, ""]
    }
    settings = Settings.from_env(
        {
            "IMAGE_BUCKET": "images",
            "PUBLIC_URL": "https://d111.cloudfront.net",
            "OIDC_ISSUER": substitute(issuer, DEPLOYED),
            "OIDC_CLIENT_ID": "client",
        }
    )
    assert settings.oidc_issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_P"


def test_self_sign_up_is_a_parameter_off_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["SelfSignUp"]["Default"] == "false"
    assert template["Conditions"]["SelfSignUpOn"] == {"Fn::Equals": [{"Ref": "SelfSignUp"}, "true"]}
    assert resource(template, "UserPool")["AutoVerifiedAttributes"] == ["email"]  # e-mail verified


SOCIAL = {  # provider resource: (its parameter, the secret's keys in ProviderDetails)
    "GoogleIdentityProvider": ("GoogleClientId", {"client_secret"}),
    "FacebookIdentityProvider": ("FacebookAppId", {"client_secret"}),
    "AppleIdentityProvider": ("AppleServicesId", {"private_key"}),
}
SECRET_DETAILS = {"client_secret", "private_key"}


def condition_holds(template: Mapping[str, Any], value: Any, parameters: Mapping[str, str]) -> Any:
    """A condition's value for ``parameters`` (the rest at their defaults), as CloudFormation."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, args),) = value.items()
        if name == "Condition":
            return condition_holds(template, template["Conditions"][args], parameters)
        if name == "Ref":
            return parameters.get(args, template["Parameters"][args].get("Default"))
        if name == "Fn::Equals":
            left, right = (condition_holds(template, arg, parameters) for arg in args)
            return left == right
        if name == "Fn::Not":
            return not condition_holds(template, args[0], parameters)
        if name == "Fn::And":
            return all(condition_holds(template, arg, parameters) for arg in args)
    return value


def created(template: Mapping[str, Any], name: str, parameters: Mapping[str, str]) -> bool:
    condition = template["Resources"][name].get("Condition")
    return condition is None or condition_holds(template, {"Condition": condition}, parameters)


def identity_providers(template: Mapping[str, Any], parameters: Mapping[str, str]) -> list[Any]:
    """The app client's SupportedIdentityProviders once its Fn::If are decided."""
    chosen = []
    for entry in resource(template, "UserPoolClient")["SupportedIdentityProviders"]:
        if isinstance(entry, dict) and "Fn::If" in entry:
            condition, yes, no = entry["Fn::If"]
            entry = yes if condition_holds(template, {"Condition": condition}, parameters) else no
        if entry != {"Ref": "AWS::NoValue"}:
            chosen.append(entry)
    return chosen


def test_no_social_provider_exists_unless_its_parameter_is_set(template: dict[str, Any]) -> None:
    for name, (parameter, _) in SOCIAL.items():
        assert template["Parameters"][parameter]["Default"] == ""
        assert not created(template, name, {})
    assert identity_providers(template, {}) == ["COGNITO"]


@pytest.mark.parametrize("name", list(SOCIAL))
def test_a_social_provider_takes_its_id_from_a_parameter_and_its_secret_from_secrets_manager(
    template: dict[str, Any], name: str
) -> None:
    parameter, secret_keys = SOCIAL[name]
    given = {parameter: "id-from-the-console"}
    assert created(template, name, given)
    assert identity_providers(template, given) == ["COGNITO", {"Ref": name}]
    details = resource(template, name)["ProviderDetails"]
    assert details["client_id"] == {"Ref": parameter}
    for key in secret_keys:
        reference = substitute(details[key], DEPLOYED)
        assert reference.startswith("{{resolve:secretsmanager:resizer/sign-in:SecretString:")
    # The other providers stay absent; with the stack's own pool off, this one too.
    others = [other for other in SOCIAL if other != name]
    assert not any(created(template, other, given) for other in others)
    pool = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_X"
    assert not created(template, name, {**given, "UserPoolArn": pool})


def test_no_sign_in_secret_is_written_in_the_template(template: dict[str, Any]) -> None:
    for entry in template["Resources"].values():
        if entry["Type"] != "AWS::Cognito::UserPoolIdentityProvider":
            continue
        for key, value in entry["Properties"]["ProviderDetails"].items():
            if key in SECRET_DETAILS:
                assert "{{resolve:secretsmanager:" in value["Fn::Sub"]
            else:  # ids come from parameters; only the scopes are written here
                assert key == "authorize_scopes" or set(value) == {"Ref"}
    assert set(SOCIAL) == {
        name
        for name, entry in template["Resources"].items()
        if entry["Type"] == "AWS::Cognito::UserPoolIdentityProvider"
    }
