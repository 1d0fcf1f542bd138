# The two commands of README.md, and the pieces they are made of. Each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
ENV ?= local
MARKERS ?= postdeploy
WORKERS ?= 4
# The local ARM test server's token (not a secret; see testbed/services.py). Real environments get theirs from
# DefaultAzureCredential or a pipeline variable.
export DV_ARM_TOKEN ?= dv-testbed-arm-token-3f9c

.PHONY: help demo test bootstrap tools browser lint testbed-up testbed-down verify report

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: bootstrap  ## bring the testbed up, verify the local environment, render the report, tear down
	@$(PY) -m testbed up
	@rc=0; $(PY) -m pytest features --env $(ENV) -m $(MARKERS) -n $(WORKERS) \
	    --release testbed/release-$(ENV).yaml || rc=$$?; \
	  $(PY) -m testbed down; \
	  scripts/render-report >/dev/null && echo "report: reports/allure-report/index.html (serve it: $(PY) -m http.server -d reports/allure-report)"; \
	  exit $$rc

test: bootstrap tools browser lint  ## lint, type-check and run the project's own tests against the real testbed
	$(PY) -m pytest tests -q

lint: bootstrap  ## ruff and mypy, as CI runs them
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bootstrap:  ## .venv with the pinned versions of requirements.lock
	@scripts/bootstrap

browser:  ## Debian's chromium for tests/test_report_review.py (idempotent)
	@scripts/install-browser

tools:  ## pinned tools the tests call (actionlint, the Kubernetes binaries), cached by version
	@scripts/install-tools
	@testbed/kube/build.sh  # seconds when cached; a cold build (~9 min) happens here, not inside a test's timeout
	@testbed/tofu/build.sh  # OpenTofu + the local provider mirror for @drift (~3 min cold, <1 s warm)
	@scripts/install-prometheus  # Debian's prometheus for the testbed's metrics (silent when present)

testbed-up: bootstrap  ## start the demo services (127.0.0.1:184xx)
	$(PY) -m testbed up

testbed-down:  ## stop them
	$(PY) -m testbed down

verify: bootstrap  ## run the gate: make verify ENV=local-broken MARKERS=postdeploy
	$(PY) -m pytest features --env $(ENV) -m $(MARKERS) -n $(WORKERS)

report:  ## render reports/allure-results into reports/allure-report (offline, pinned generator)
	scripts/render-report
