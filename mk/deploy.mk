# Deployment targets, included by the Makefile: `make tools`, `make build`, `make lint-template`,
# `make deploy`. See docs/deploy.md.
#
#   make build              release Lambda binaries: target/lambda/{import-fn,drain-fn,status-fn}/bootstrap
#   make build ARCH=arm64   for Graviton (needs the aarch64-unknown-linux-gnu Rust target)
#   make lint-template      the API's routes against openapi.yaml (scripts/api_routes.py), then
#                           sam validate (SAM transform), sam validate --lint and cfn-lint on template.yaml
#   make deploy             sam build && sam deploy (guided while samconfig.toml has placeholders)
#   make deploy GUIDED=1    always guided: asks for every parameter, saves the answers
#   make tools              installs cargo-lambda, aws-sam-cli and cfn-lint with pip if missing
#   make rds-ca             fetches the RDS CA bundle (certs/rds-global-bundle.pem) the functions
#                           verify the database with (sslmode=verify-full); make deploy runs it

DEPLOY_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)

PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Architecture of `make build`: this machine's by default (x86_64 or arm64). `make deploy`
# builds with sam instead, for the template's Architecture parameter (samconfig.toml).
ARCH ?= $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
GUIDED ?=
LAMBDA_BINARIES := import-fn drain-fn status-fn

LAMBDA_RUST_TARGET = $(if $(filter arm64 aarch64,$(ARCH)),aarch64-unknown-linux-gnu,$(if $(filter x86_64 amd64,$(ARCH)),x86_64-unknown-linux-gnu))

# pip puts the tools' commands in the interpreter's scripts directory (or the user base's
# bin with --user), which need not be on PATH; the recipes look there first.
DEPLOY_PATH = $(shell $(PYTHON) -c 'import site, sysconfig; print(sysconfig.get_path("scripts") + ":" + site.getuserbase() + "/bin")' 2>/dev/null):$$PATH
DEPLOY_ENV = PATH="$(DEPLOY_PATH)" SAM_CLI_TELEMETRY=0
# sam validate needs a region; any will do for validating.
DEPLOY_LINT_REGION = AWS_DEFAULT_REGION="$${AWS_REGION:-$${AWS_DEFAULT_REGION:-us-east-1}}"

.PHONY: tools build lint-template deploy rds-ca

# The CA bundle of RDS and Aurora, all regions, from AWS's own trust store (not a package
# registry); shipped to the functions as the RdsCaBundle layer (template.yaml, at /opt). Fetched
# once: delete the file to fetch it again (AWS adds CAs to it from time to time).
RDS_CA_URL ?= https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
RDS_CA_BUNDLE := certs/rds-global-bundle.pem

# command:pip-package pairs; only the missing ones are installed (and PyYAML for
# scripts/api_routes.py, which the tools' own Python may not share).
DEPLOY_TOOLS := cargo-lambda:cargo-lambda sam:aws-sam-cli cfn-lint:cfn-lint

tools:
	@PATH="$(DEPLOY_PATH)"; missing=""; \
	for pair in $(DEPLOY_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c "import yaml" 2>/dev/null || missing="$$missing pyyaml"; \
	if [ -n "$$missing" ]; then \
	  echo "pip install$$missing"; \
	  $(PIP) install --quiet $$missing; \
	fi

build: tools
	@test -n "$(LAMBDA_RUST_TARGET)" || { echo "ARCH must be x86_64 or arm64, got '$(ARCH)'" >&2; exit 1; }
	@if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx '$(LAMBDA_RUST_TARGET)'; then \
	  rustup target add $(LAMBDA_RUST_TARGET) || { echo "the Rust target $(LAMBDA_RUST_TARGET) is missing: rustup target add $(LAMBDA_RUST_TARGET)" >&2; exit 1; }; \
	fi
	cd $(DEPLOY_ROOT) && $(DEPLOY_ENV) cargo lambda build --release --target $(LAMBDA_RUST_TARGET) $(addprefix --bin ,$(LAMBDA_BINARIES))
	@cd $(DEPLOY_ROOT) && for bin in $(LAMBDA_BINARIES); do ls -l "$${CARGO_TARGET_DIR:-target}/lambda/$$bin/bootstrap"; done

# `sam validate --lint` only runs cfn-lint; plain `sam validate` runs SAM's transform (offline),
# which is what refuses SAM-level mistakes such as an intrinsic in an HttpApi's Auth. Neither
# knows openapi.yaml: scripts/api_routes.py fails when the HTTP API's routes drift from it.
lint-template: tools
	cd $(DEPLOY_ROOT) && $(PYTHON) scripts/api_routes.py
	cd $(DEPLOY_ROOT) && $(DEPLOY_ENV) $(DEPLOY_LINT_REGION) sam validate --template template.yaml
	cd $(DEPLOY_ROOT) && $(DEPLOY_ENV) $(DEPLOY_LINT_REGION) sam validate --lint --template template.yaml
	cd $(DEPLOY_ROOT) && $(DEPLOY_ENV) cfn-lint template.yaml

rds-ca:
	@cd $(DEPLOY_ROOT) && if [ ! -s $(RDS_CA_BUNDLE) ]; then \
	  echo "fetching $(RDS_CA_URL)"; \
	  curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
	    -o $(RDS_CA_BUNDLE).tmp "$(RDS_CA_URL)" \
	  && grep -q -- '-----BEGIN CERTIFICATE-----' $(RDS_CA_BUNDLE).tmp \
	  && mv $(RDS_CA_BUNDLE).tmp $(RDS_CA_BUNDLE) \
	  || { rm -f $(RDS_CA_BUNDLE).tmp; echo "could not fetch the RDS CA bundle; put it at $(RDS_CA_BUNDLE)" >&2; exit 1; }; \
	fi; \
	echo "$(RDS_CA_BUNDLE): $$(grep -c -- '-----BEGIN CERTIFICATE-----' $(RDS_CA_BUNDLE)) certificates"

# Authorizer=NONE (only ever chosen explicitly: the template's default is IAM) leaves the API open
# to anyone: said before the deploy and again after it (a guided deploy may have just chosen it).
WARN_OPEN_API = if grep -Eq '^[^\#]*"Authorizer=NONE"' samconfig.toml; then \
	  printf '\n*** WARNING: Authorizer=NONE: the API is OPEN to anyone who learns its URL; the body'"'"'s\n*** createdBy is trusted and any job'"'"'s status is readable by anyone. See docs/deploy.md,\n*** "Who may call the API". Use IAM (the default) or JWT beyond a private trial.\n\n' >&2; \
	fi

# Checks the template first (a route drifting from openapi.yaml would deploy without its
# authorizer). Guided (interactive: asks for each parameter and saves them to samconfig.toml) when
# GUIDED=1 or while samconfig.toml still holds the REPLACE_ME placeholders.
deploy: tools lint-template rds-ca
	@cd $(DEPLOY_ROOT) && $(WARN_OPEN_API)
	cd $(DEPLOY_ROOT) && $(DEPLOY_ENV) sam build
	@cd $(DEPLOY_ROOT) && if [ -n "$(GUIDED)" ] || grep -q REPLACE_ME samconfig.toml; then \
	  echo "sam deploy --guided"; $(DEPLOY_ENV) sam deploy --guided; \
	else \
	  echo "sam deploy"; $(DEPLOY_ENV) sam deploy; \
	fi
	@cd $(DEPLOY_ROOT) && $(WARN_OPEN_API)
