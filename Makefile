# Two commands matter: `make run` (the local stack) and `make test`.
# Both install what they need into .venv and node_modules first.

# Lambda's python3.12 runtime is the deploy target (see docs/deploy.md);
# locally any Python >= 3.11 works, 3.12 is preferred when present.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
NODE_STAMP := node_modules/.installed

# Deploying (see docs/deploy.md): make package, make deploy, make doctor.
AWS_REGION ?= us-east-1
STACK_NAME ?=
BUCKET_NAME ?=
ORIGINALS_BUCKET_NAME ?=
ARTIFACT_BUCKET ?=
PACKAGE_DIR := build/package
AWS_CLI := aws --region $(AWS_REGION)

.PHONY: install install-note run test test-fast lint bench load clean package deploy deploy-settings doctor teardown

# The first install takes minutes and would look hung: say so first, then show pip's progress.
INSTALL_NOTE := installing Python and Node dependencies into $(VENV) and node_modules, about 2 minutes the first time

install: install-note $(PY_STAMP) $(NODE_STAMP)

install-note:
	@test -f $(PY_STAMP) -a -f $(NODE_STAMP) || echo "$(INSTALL_NOTE)"

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "need Python >= 3.11 (python3)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/python -m scripts.local.stack

# A bounded load run on loopback against its own local stack; LOAD_ARGS, e.g.
# `--misses 400 --hits 5000 --concurrency 64`, go to scripts/bench/load.py.
# Then an upload burst (BURST_ARGS, e.g. `--uploads 500`) through the events pipeline.
load: install
	$(BIN)/python -m scripts.bench.load $(LOAD_ARGS)
	$(BIN)/python -m scripts.bench.upload_burst $(BURST_ARGS)

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
PYTEST = run_pytest() { $(BIN)/python -m pytest "$$@"; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status; }; run_pytest

test: install lint
	@$(PYTEST) $(PYTEST_ARGS)

# The edit loop: every in-process test; no local stack, browser or packaging.
test-fast: install lint
	@$(PYTEST) -m "not e2e and not package" $(PYTEST_ARGS)

$(BENCH_STAMP): requirements-bench.txt $(PY_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

# The pipeline table (scripts/bench/pipeline.py), smart crops and placeholders, watermarks,
# then miss/hit timing through the local stack.
# BENCH_ARGS="--quick" for fewer rounds, "--photos DIR" for your own JPEGs.
# Then one miss through the handler in-process, broken down (scripts/bench/miss_harness.py),
# and a cold start's CPU (scripts/bench/cold_start.py; BASELINE=DIR compares
# with another checkout). It ends with the lines each measured in this run (scripts/bench/summary.py).
bench: install $(BENCH_STAMP)
	rm -f .local/bench/*.summary
	$(BIN)/python -m scripts.bench.pipeline $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.crops $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.watermarks $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.bombs $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.stack $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.miss_harness $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.cold_start $(BENCH_ARGS) $(if $(BASELINE),--baseline $(BASELINE))
	$(BIN)/python -m scripts.bench.quality $(BENCH_ARGS)
	$(BIN)/python -m scripts.bench.bytes_per_view $(BENCH_ARGS)
	@$(BIN)/python -m scripts.bench.summary

# One SAM template (app + bucket + website rule + policy + CloudFront) and the
# Lambda zip, linted and inspected; refuses to run on a venv older than 3.12.
package: $(PY_STAMP)
	$(BIN)/python -m scripts.ops.package --out $(PACKAGE_DIR) --region $(AWS_REGION)

# Needs the AWS CLI and credentials; ARTIFACT_BUCKET is any bucket you own in
# AWS_REGION for the zip.  Running it again updates the stack in place.
deploy: deploy-settings package
	$(AWS_CLI) cloudformation package --template-file $(PACKAGE_DIR)/sam.json \
		--s3-bucket $(ARTIFACT_BUCKET) --output-template-file $(PACKAGE_DIR)/packaged.yaml
	$(AWS_CLI) cloudformation deploy --template-file $(PACKAGE_DIR)/packaged.yaml \
		--stack-name $(STACK_NAME) --parameter-overrides BucketName=$(BUCKET_NAME) OriginalsBucketName=$(ORIGINALS_BUCKET_NAME) \
			$(if $(CORS_ORIGINS),CorsOrigins=$(CORS_ORIGINS)) $(if $(USER_POOL_ARN),UserPoolArn=$(USER_POOL_ARN)) $(STACK_PARAMETERS) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset
	$(AWS_CLI) cloudformation describe-stacks --stack-name $(STACK_NAME) \
		--query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
	$(BIN)/python -m scripts.ops.publish_page --stack $(STACK_NAME) --region $(AWS_REGION)

deploy-settings:
	@test -n "$(STACK_NAME)" -a -n "$(BUCKET_NAME)" -a -n "$(ORIGINALS_BUCKET_NAME)" -a -n "$(ARTIFACT_BUCKET)" || { \
		echo "usage: make deploy STACK_NAME=image-resizer BUCKET_NAME=my-images ORIGINALS_BUCKET_NAME=my-originals ARTIFACT_BUCKET=my-artifacts [AWS_REGION=us-east-1]"; exit 1; }
	@command -v aws >/dev/null || { echo "make deploy needs the AWS CLI (aws) on PATH"; exit 1; }

# With STACK_NAME: the deployed stack.  Without: the `make run` stack.
doctor: $(PY_STAMP)
	$(BIN)/python -m scripts.ops.doctor $(if $(STACK_NAME),--stack $(STACK_NAME) --region $(AWS_REGION),--local)

# Empties the variants bucket (BUCKET_NAME), then deletes the stack; the originals
# bucket, the user pool and the metadata table are kept (DeletionPolicy: Retain).
teardown:
	@test -n "$(STACK_NAME)" -a -n "$(BUCKET_NAME)" || { echo "usage: make teardown STACK_NAME=... BUCKET_NAME=... CONFIRM=<BUCKET_NAME>"; exit 1; }
	@test "$(CONFIRM)" = "$(BUCKET_NAME)" || { echo "this deletes every object in s3://$(BUCKET_NAME); run again with CONFIRM=$(BUCKET_NAME)"; exit 1; }
	$(AWS_CLI) s3 rm s3://$(BUCKET_NAME) --recursive
	$(AWS_CLI) cloudformation delete-stack --stack-name $(STACK_NAME)
	$(AWS_CLI) cloudformation wait stack-delete-complete --stack-name $(STACK_NAME)

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .ruff_cache .hypothesis build
