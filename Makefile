# The verbs of the project. The first two are the README's two commands.
.DEFAULT_GOAL := help
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export PYTHONPATH := $(CURDIR):$(CURDIR)/shared

UV_VERSION := 0.13.8
SAM_VERSION := 1.170.0
TOOLS := $(CURDIR)/.tools
UV := $(TOOLS)/uv/bin/uv
SAM := $(TOOLS)/sam/bin/sam
PY := $(CURDIR)/.venv/bin/python
PORT ?= 3000

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	python3 -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

install: .venv/.synced  ## install the project and its dev tools from the lock file into .venv

run: install  ## start the local stack with demo data; prints a token and a curl line
	$(PY) -m infra.local.stack --port $(PORT) $(if $(PARAMS),--parameter-overrides $(PARAMS))

mail: install  ## list the mails the local stack's SES has sent (SHOW=n prints mail n's text, SHOW=-1 the newest's)
	@$(PY) -m infra.local.mail $(if $(SHOW),--show $(SHOW))

test: install lint typecheck cfnlint pytest  ## lint, type checks, cfn-lint and the whole test suite

lint: install  ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install  ## apply ruff's formatting and safe fixes
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: install  ## mypy
	$(PY) -m mypy

cfnlint: install  ## cfn-lint on template.yaml
	$(CURDIR)/.venv/bin/cfn-lint template.yaml

pytest: install  ## unit, integration and e2e tests
	$(PY) -m pytest -q

test-long: install  ## the property-based tests with thousands of examples each (not part of make test)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q --timeout=3600 tests/unit

fuzz: install  ## schemathesis over the whole OpenAPI document with many examples per operation (make test runs 25)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(PY) -m pytest -q --timeout=3600 tests/e2e/test_contract_fuzz.py

bench: bench-calls bench-exports bench-postgres bench-lexer bench-bursting  ## all benchmarks (tests/performance), not part of the tests

bench-calls: install  ## report-call overhead and cold imports
	$(PY) tests/performance/bench_report_call.py

bench-exports: install  ## exports of 1M rows per format against pandas (builds .local/bench-1m.sqlite once)
	$(PY) tests/performance/bench_exports.py --repeats 3
	$(PY) tests/performance/bench_local_export.py

bench-postgres: install  ## exports of 1M rows from PostgreSQL against pandas, psycopg, ADBC and DuckDB; call overhead (builds the table in .local/bench-pg once)
	$(PY) tests/performance/bench_postgres_exports.py --repeats 3

bench-bursting: install  ## a per-recipient job mailing 200 recipients on the local stack: trigger to last mail, per recipient
	$(PY) tests/performance/bench_bursting.py --recipients 200 --repeats 3

bench-lexer: install  ## the bind-variable lexer against sqlglot's tokenizer (cold import, warm lexing)
	$(PY) tests/performance/bench_sql_lexer.py

lock: $(UV)  ## re-resolve uv.lock, and the layer requirements from it (boto3 comes with the Lambda runtime)
	$(UV) lock
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --no-header --quiet \
		--no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer \
		| grep -v '^ *#' > layers/api/requirements.txt
	$(UV) export --frozen --only-group worker --no-hashes --no-emit-project --no-header --quiet \
		| grep -v '^ *#' > layers/worker/requirements.txt

$(SAM):
	python3.12 -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet aws-sam-cli==$(SAM_VERSION)

build: $(SAM) install  ## sam build (aws-sam-cli in its own tool environment), then check sizes and imports
	$(SAM) build --template-file template.yaml
	$(PY) -m infra.build.check_artifacts .aws-sam/build

deploy: build  ## sam deploy --guided
	$(SAM) deploy --guided

# Called by `sam build` for each function with BuildMethod: makefile: the handler's folder and the
# project's package, nothing else (third-party code comes from the layers), compiled to the bytecode
# Lambda's runtime loads (infra/build/bytecode.py: half the cold start is compiling otherwise).
define package_function
	mkdir -p "$(ARTIFACTS_DIR)/functions"
	cp functions/__init__.py "$(ARTIFACTS_DIR)/functions/"
	cp -R "functions/$(1)" "$(ARTIFACTS_DIR)/functions/"
	cp -R shared/reportserver "$(ARTIFACTS_DIR)/"
	$(if $(filter export_worker,$(1)),,rm -rf "$(ARTIFACTS_DIR)/reportserver/render/fonts")
	$(PY) -m infra.build.bytecode "$(ARTIFACTS_DIR)" /var/task
endef

build-AuthFunction: ; $(call package_function,auth)
build-ReportsFunction: ; $(call package_function,reports)
build-ExportsFunction: ; $(call package_function,exports)
build-ExportWorkerFunction: ; $(call package_function,export_worker)
build-ExportDeadLettersFunction: ; $(call package_function,export_dead_letters)
build-ExportSweeperFunction: ; $(call package_function,export_sweeper)
build-AdminFunction: ; $(call package_function,admin)
build-CatalogAdminFunction: ; $(call package_function,catalog_admin)
build-JobsFunction: ; $(call package_function,jobs)
build-JobRunnerFunction: ; $(call package_function,job_runner)
build-AuditWriterFunction: ; $(call package_function,audit_writer)
build-LoginFunction: ; $(call package_function,login)
build-ViewAuthFunction: ; $(call package_function,view_auth)
build-DataRefreshFunction: ; $(call package_function,data_refresh)

clean:  ## remove build outputs and local state (keeps .venv and .tools)
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run mail test test-long fuzz lint format typecheck cfnlint pytest bench bench-calls bench-exports bench-postgres bench-lexer lock build deploy clean
