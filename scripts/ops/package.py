#!/usr/bin/env python3
"""`make package`: one SAM stack + a Lambda zip whose Pillow loads on Lambda.

Runs ``chalice package --merge-template infra/resources.json --stage prod``,
lints the template with cfn-lint, and inspects ``deployment.zip``: Pillow's
wheel tags, every shared library's CPU architecture and the newest glibc
symbol it needs, and, when this machine has the same architecture, that the
zip's Pillow imports and renders in an interpreter that sees only the zip.

    .venv/bin/python -m scripts.ops.package [--out build/package] [--region us-east-1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.routes import owner_paths

ROOT = Path(__file__).resolve().parents[2]
MERGE_TEMPLATE = ROOT / "infra" / "resources.json"
# The CloudFront Function's code, a file of its own (tested in Node); the template gets it inline.
VIEWER_REQUEST = ROOT / "infra" / "cdn" / "viewer_request.js"
FUNCTION_RESOURCE = "AutoFormatFunction"
MAX_FUNCTION_BYTES = 10 * 1024  # CloudFront Functions' code size limit
STAGE = "prod"

# Chalice picks the Lambda runtime from the Python that runs it.  The
# python3.12+ runtimes run on Amazon Linux 2023, whose glibc is 2.34; with
# Python 3.11 chalice would silently build Pillow from source (docs/deploy.md).
MIN_PYTHON = (3, 12)
LAMBDA_GLIBC = (2, 34)

# ELF e_machine values, and the names Lambda and wheel tags use for them.
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
WHEEL_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
# pillow-heif's files in the zip: the binding, its package and its bundled libraries.
HEIF_PATHS = ("pillow_heif", "_pillow_heif")
# botocore and its dependencies, as the Lambda Python runtime provides them: never in the zip.
RUNTIME_PACKAGES = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
)
RUNTIME_DISTRIBUTIONS = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "urllib3", "six"}
)
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclass
class ZipReport:
    """Facts about deployment.zip that decide whether Pillow loads on Lambda."""

    pillow_wheel_tags: list[str] = field(default_factory=list)
    heif_wheel_tags: list[str] = field(default_factory=list)  # pillow-heif: HEIC originals
    heif_bytes: int = 0  # what pillow-heif adds to the zip, compressed
    shared_objects: dict[str, str] = field(default_factory=dict)  # path → ELF machine
    glibc_needed: dict[str, tuple[int, int]] = field(default_factory=dict)  # path → newest
    pycache_tags: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)

    def has(self, pattern: str) -> bool:
        return any(re.fullmatch(pattern, name) for name in self.names)


def python_is_supported(version: tuple[int, ...] = tuple(sys.version_info)) -> bool:
    return version[:2] >= MIN_PYTHON


def lambda_architecture(stage: str = STAGE) -> str:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config["stages"][stage]
    return str(stage_config.get("lambda_architecture", config.get("lambda_architecture", "x86_64")))


def merge_template() -> dict[str, object]:
    """infra/resources.json with the CloudFront Function's code inlined from its file, and
    ``DELETE /uploads/<key>`` (one path per key depth) behind the uploads authorizer."""
    template = json.loads(MERGE_TEMPLATE.read_text())
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    uploads_security = paths["/uploads"]["post"]["security"]
    for path in owner_paths():
        paths[path] = {"delete": {"security": uploads_security}}
    code = VIEWER_REQUEST.read_text()
    if len(code.encode()) > MAX_FUNCTION_BYTES:
        raise SystemExit(f"{VIEWER_REQUEST} is over CloudFront's {MAX_FUNCTION_BYTES} bytes")
    template["Resources"][FUNCTION_RESOURCE]["Properties"]["FunctionCode"] = code
    return template


def chalice_package(out_dir: Path, region: str, stage: str = STAGE) -> None:
    """Run chalice's packager; it downloads manylinux wheels from PyPI."""
    chalice = Path(sys.executable).parent / "chalice"
    with tempfile.TemporaryDirectory() as scratch:
        merge = Path(scratch) / "resources.json"
        merge.write_text(json.dumps(merge_template(), indent=2))
        command = [
            str(chalice),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(merge),
            str(out_dir),
        ]
        # Only the region matters to chalice package; it makes no AWS calls.
        env = {**os.environ, "AWS_DEFAULT_REGION": region}
        subprocess.run(command, cwd=ROOT, env=env, check=True)
    drop_runtime_packages(out_dir / "deployment.zip")


def drop_runtime_packages(zip_path: Path) -> list[str]:
    """Remove from the zip what the Lambda runtime provides (RUNTIME_PACKAGES); what went.

    chalice installs every requirement with its dependencies: the X-Ray SDK
    brings botocore and its own, which the runtime has already (and which
    would shadow the runtime's boto3 with a botocore of another version).
    """
    with zipfile.ZipFile(zip_path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    kept = [(info, data) for info, data in entries if not _runtime_provided(info.filename)]
    if len(kept) == len(entries):
        return []
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in kept:
            archive.writestr(info, data)
    return sorted(
        {info.filename.split("/")[0] for info, _ in entries}
        - {info.filename.split("/")[0] for info, _ in kept}
    )


def _runtime_provided(name: str) -> bool:
    top = name.split("/")[0]
    if top.endswith(".dist-info"):
        return top.split("-")[0].lower() in RUNTIME_DISTRIBUTIONS
    return top.removesuffix(".py") in RUNTIME_PACKAGES


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    cfn_lint_bin = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run(
        [str(cfn_lint_bin), str(template)], capture_output=True, text=True, check=False
    )


def inspect_zip(path: Path) -> ZipReport:
    report = ZipReport()
    with zipfile.ZipFile(path) as archive:
        report.names = archive.namelist()
        for name in report.names:
            if name.startswith(HEIF_PATHS):
                report.heif_bytes += archive.getinfo(name).compress_size
            if re.fullmatch(r"pillow-[^/]+\.dist-info/WHEEL", name):
                report.pillow_wheel_tags = _wheel_tags(archive.read(name).decode())
            elif re.fullmatch(r"pillow_heif-[^/]+\.dist-info/WHEEL", name):
                report.heif_wheel_tags = _wheel_tags(archive.read(name).decode())
            elif re.search(r"\.so(\.[0-9]+)*$", name):
                data = archive.read(name)
                report.shared_objects[name] = _elf_machine(data)
                newest = _newest_glibc(data)
                if newest is not None:
                    report.glibc_needed[name] = newest
            elif match := re.search(r"__pycache__/[^/]+\.(cpython-[0-9]+)", name):
                report.pycache_tags.add(match.group(1))
    return report


def problems(report: ZipReport, architecture: str, python_tag: str = "cp312") -> list[str]:
    """Everything that would stop the zip's Pillow from loading on Lambda; empty if none."""
    machine = WHEEL_MACHINE[architecture]
    found = []
    wheels = {"pillow": report.pillow_wheel_tags, "pillow_heif": report.heif_wheel_tags}
    for wheel, tags in wheels.items():
        if not tags:
            found.append(f"no {wheel}-*.dist-info/WHEEL in the zip")
        found += [
            f"{wheel} wheel tag {tag} does not fit {python_tag} on {machine} glibc ≤ 2.34"
            for tag in tags
            if not wheel_tag_fits(tag, python_tag, machine)
        ]
    if not report.has(r"PIL/_imaging\.cpython-[0-9]+-[^/]+\.so"):
        found.append("PIL/_imaging*.so is missing")
    if not report.has(r"pillow\.libs/.+\.so.*"):
        found.append("pillow.libs/ (libjpeg, libwebp, …) is missing")
    if not report.has(r"pillow_heif\.libs/libheif-.+\.so.*"):
        found.append("pillow_heif.libs/ (libheif, libde265) is missing")
    found += [
        f"{name} is {elf} code, Lambda runs {machine}"
        for name, elf in report.shared_objects.items()
        if elf != machine
    ]
    found += [
        f"{name} needs GLIBC_{major}.{minor}, Lambda has {LAMBDA_GLIBC[0]}.{LAMBDA_GLIBC[1]}"
        for name, (major, minor) in report.glibc_needed.items()
        if (major, minor) > LAMBDA_GLIBC
    ]
    wanted_pyc = f"cpython-{python_tag[2:]}"
    found += [f"bytecode for {tag} in the zip" for tag in report.pycache_tags - {wanted_pyc}]
    return found


def wheel_tag_fits(tag: str, python_tag: str, machine: str) -> bool:
    """Whether a wheel tag like ``cp312-cp312-manylinux_2_28_x86_64`` loads on the runtime."""
    python, abi, platform_tag = tag.split("-")
    if python != python_tag and not (abi == "abi3" and _version(python) <= _version(python_tag)):
        return False
    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(.+)", platform_tag)
    if legacy:
        return legacy.group(2) == machine and LEGACY_MANYLINUX[legacy.group(1)] <= LAMBDA_GLIBC
    perennial = re.fullmatch(r"manylinux_([0-9]+)_([0-9]+)_(.+)", platform_tag)
    if perennial:
        glibc = (int(perennial.group(1)), int(perennial.group(2)))
        return perennial.group(3) == machine and glibc <= LAMBDA_GLIBC
    return False


def smoke_test(zip_path: Path) -> subprocess.CompletedProcess[str]:
    """Import Pillow from the zip alone (``-I -S``: no site-packages) and render a JPEG; then
    a WebP through the zip's bundled libwebp (its path is printed), and without it."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from io import BytesIO\n"
        "from PIL import Image, features\n"
        "import PIL\n"
        "assert PIL.__file__.startswith(sys.argv[1]), PIL.__file__\n"
        "from chalicelib.resize.grammar import parse_size\n"
        "from chalicelib.imaging import render\n"
        "buffer = BytesIO(); Image.new('RGB', (640, 480), 'teal').save(buffer, 'JPEG')\n"
        "out = render(buffer.getvalue(), parse_size('320x', 4096))\n"
        "print(PIL.__version__, out.content_type, out.width, out.height,\n"
        "      *(f for f in ('jpg', 'webp', 'zlib') if features.check(f)))\n"
        # The scaled WebP decode loads the zip's own libwebp, and falls back without it.
        "import os\n"
        "from chalicelib.imaging import webp\n"
        "lib = webp.library()\n"
        "buffer = BytesIO(); Image.new('RGB', (640, 480), 'teal').save(buffer, 'WEBP')\n"
        "scaled = render(buffer.getvalue(), parse_size('160x', 4096))\n"
        "webp.library.cache_clear(); webp.library_candidates = lambda: []\n"
        "fallback = render(buffer.getvalue(), parse_size('160x', 4096))\n"
        "print(os.path.relpath(lib._name, sys.argv[1]) if lib else 'no-libwebp',\n"
        "      scaled.width, scaled.height, webp.available(), fallback.width, fallback.height)\n"
        # A HEIC, written by the zip's own pillow-heif, decoded through the lazy opener.
        "import time\n"
        "started = time.perf_counter(); import pillow_heif\n"
        "imported = time.perf_counter() - started\n"
        "assert pillow_heif.__file__.startswith(sys.argv[1]), pillow_heif.__file__\n"
        "buffer = BytesIO()\n"
        "pillow_heif.from_pillow(Image.new('RGB', (64, 48), 'teal')).save(buffer, quality=60)\n"
        "heic = render(buffer.getvalue(), parse_size('32x', 4096))\n"
        "print(pillow_heif.__version__, heic.content_type, heic.width, heic.height)\n"
        "print(f'import pillow_heif: {imported * 1000:.0f} ms', file=sys.stderr)\n"
    )
    with tempfile.TemporaryDirectory() as extracted:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(extracted)
        return subprocess.run(
            [sys.executable, "-I", "-S", "-c", code, extracted],
            capture_output=True,
            text=True,
            check=False,
        )


def describe(report: ZipReport) -> str:
    machines = ", ".join(sorted(set(report.shared_objects.values()))) or "none"
    newest = max(report.glibc_needed.values(), default=None)
    glibc = f"{newest[0]}.{newest[1]}" if newest else "none"
    return (
        f"zip: Pillow wheel {' '.join(report.pillow_wheel_tags) or 'missing'}; "
        f"{len(report.shared_objects)} shared objects ({machines}); newest glibc symbol {glibc}; "
        f"pillow-heif {' '.join(report.heif_wheel_tags) or 'missing'}, "
        f"{report.heif_bytes / 2**20:.1f} MiB of the zip"
    )


def same_machine(architecture: str) -> bool:
    return platform.machine() == WHEEL_MACHINE[architecture]


def _version(python_tag: str) -> tuple[int, int]:
    """``cp312`` → (3, 12); tags compare as versions, not strings ("cp38" < "cp312")."""
    digits = python_tag.removeprefix("cp")
    return int(digits[0]), int(digits[1:] or 0)


def _wheel_tags(wheel_metadata: str) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for line in wheel_metadata.splitlines()
        if line.startswith("Tag:")
    ]


def _elf_machine(data: bytes) -> str:
    if data[:4] != b"\x7fELF":
        return "not ELF"
    byteorder = "little" if data[5] == 1 else "big"
    machine = int.from_bytes(data[18:20], byteorder)
    return ELF_MACHINES.get(machine, f"e_machine {machine}")


def _newest_glibc(data: bytes) -> tuple[int, int] | None:
    # Symbol version requirements ("GLIBC_2.28") sit in .dynstr as plain strings.
    versions = {(int(a), int(b)) for a, b in re.findall(rb"GLIBC_([0-9]+)\.([0-9]+)", data)}
    return max(versions) if versions else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "package")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    if not python_is_supported():
        print(
            f"make package needs the venv on Python ≥ 3.12 (it is {platform.python_version()}): "
            "chalice targets the Lambda runtime of the Python running it, and for 3.11 it "
            "builds Pillow from source against this machine's libraries, a zip that fails "
            "on Lambda.  Recreate the venv: rm -rf .venv && make install PYTHON=python3.12",
            file=sys.stderr,
        )
        return 2
    chalice_package(args.out, args.region)
    lint = cfn_lint(args.out / "sam.json")
    print(lint.stdout + lint.stderr if lint.returncode else "cfn-lint: no findings")
    architecture = lambda_architecture()
    report = inspect_zip(args.out / "deployment.zip")
    print(describe(report))
    found = problems(report, architecture)
    if same_machine(architecture):
        smoke = smoke_test(args.out / "deployment.zip")
        print(f"zip smoke test: {smoke.stdout.strip() or smoke.stderr.strip()}")
        if smoke.returncode == 0 and smoke.stderr:
            print(f"zip smoke test: {smoke.stderr.strip()}")  # pillow-heif's import time
        if smoke.returncode:
            found.append("the zip's Pillow does not import or render (see above)")
    for problem in found:
        print(f"zip: {problem}", file=sys.stderr)
    if lint.returncode or found:
        return 1
    print(f"{args.out}/sam.json and deployment.zip are ready ({architecture}, python3.12)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
