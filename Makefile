# bios-ws: `make run` serves the vBIOS, `make test` runs the whole suite.
# Both install what is missing first: Debian packages, a virtualenv, the project.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= $(shell command -v python3.11 || echo /usr/bin/python3.11)
VENV        ?= .venv
VBIOS_HOME  ?= $(CURDIR)/.vbios
BIND        ?= 127.0.0.1:8443
DEMO_DOMAIN ?= demo
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# swtpm (development TPM), tpm2-tools (interop tests), libtss2-dev + pkg-config (tpm2-pytss
# builds against them), qemu-system-x86 + qemu-utils + ovmf (real guest machines under TCG),
# iproute2 (ss: a test reads the listen backlog), postgresql (the fleet store: the store tests
# run their own server from its binaries; libpq5 for psycopg comes with it), systemd
# (systemd-analyze verifies the units, systemd-socket-activate passes a socket to `vbios serve`
# in a restart test)
APT_PACKAGES := python3.11 python3.11-venv python3.11-dev gcc pkg-config libffi-dev libssl-dev \
                ca-certificates swtpm swtpm-tools tpm2-tools libtss2-dev \
                qemu-system-x86 qemu-utils ovmf gnu-efi sbsigntool iproute2 postgresql systemd
# The SOAP stacks of the interop tier (tests/interop): PHP's SoapClient, gSOAP, JAX-WS
# wsimport with a headless JDK, Mono; node-soap comes from npm into tests/interop/node
INTEROP_APT := php-cli php-soap gsoap libgsoap-dev g++ jaxws default-jdk-headless mono-devel
NODE_DIR    := tests/interop/node
NODE_STAMP  := $(NODE_DIR)/node_modules/.installed
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
# The peer bench/concurrency.py measures bios-ws against: sushy-tools (OpenStack's Redfish
# emulator) behind gunicorn, in a virtualenv of its own so its dependencies stay out of ours
PEER_VENV     ?= bench/.venv-peer
PEER_STAMP    := $(PEER_VENV)/.installed
PEER_PACKAGES := sushy-tools==2.2.0 gunicorn==27.0.1

.PHONY: help deps interop-deps install peer run test lint unit integration e2e interop conformance wsdl baseline \
        bench clean

help:
	@echo "bios-ws: make TARGET [VARIABLE=value ...]"
	@echo
	@echo "targets:"
	@echo "  run           install what is missing, then serve the vBIOS on https://$(BIND)/ (vbios devrun)"
	@echo "  test          install what is missing, then lint and run the whole suite"
	@echo "  lint          ruff and mypy"
	@echo "  unit          the unit tests (tests/unit)"
	@echo "  integration   the integration tests (tests/integration)"
	@echo "  e2e           the end-to-end tests: real servers, swtpm, QEMU (tests/e2e)"
	@echo "  interop       other SOAP stacks against the server (tests/interop; installs them)"
	@echo "  conformance   the WS-I Basic Profile 1.1 suite; URL= and BUNDLE= check a deployment"
	@echo "  wsdl          regenerate wsdl/vbios.wsdl, its client copy and docs/operations.md"
	@echo "  baseline      update wsdl/v1-baseline.json, the v1 promise (see docs/contract.md)"
	@echo "  bench         the benchmarks in bench/ (against the peer too)"
	@echo "  peer          the benchmarks' peer (sushy-tools behind gunicorn) in $(PEER_VENV)"
	@echo "  install       the virtualenv $(VENV) with the project and the guest library"
	@echo "  deps          the Debian packages (apt-get, with sudo unless root)"
	@echo "  interop-deps  the interop tier's SOAP stacks (Debian packages, node-soap)"
	@echo "  clean         remove the virtualenvs and build files (not the state in VBIOS_HOME)"
	@echo "  help          this list"
	@echo
	@echo "variables (default value):"
	@printf '  %-12s %s\n    %s\n' \
	  BIND "$(BIND)" "where make run serves" \
	  VBIOS_HOME "$(VBIOS_HOME)" "the state directory of make run (also read by vbios)" \
	  DEMO_DOMAIN "$(DEMO_DOMAIN)" "the demo guest domain make run creates" \
	  PYTHON "$(PYTHON)" "the interpreter the virtualenvs are made with" \
	  VENV "$(VENV)" "the project's virtualenv" \
	  PEER_VENV "$(PEER_VENV)" "the benchmarks' peer virtualenv" \
	  URL "$(or $(URL),(none))" "conformance: a deployment's address (none: a server of its own)" \
	  BUNDLE "$(or $(BUNDLE),(none))" "conformance: a guest bundle of that deployment"


deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages (apt-get, a minute or more):$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): setup.cfg pyproject.toml clients/python/setup.cfg clients/python/pyproject.toml
	@echo "make: checking the Debian packages"
	@$(MAKE) --no-print-directory deps
	@[ -x $(BIN)/python ] || { echo "make: creating the virtualenv $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: upgrading pip in $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@echo "make: installing the project and the guest library into $(VENV) (pip, editable)"
	@$(BIN)/python -m pip install -q -e '.[dev]' -e clients/python
	@touch $@
	@echo "make: installed"

install: $(STAMP)

interop-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(INTEROP_APT)"
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps APT_PACKAGES="nodejs npm"
	@[ ! -f $(NODE_DIR)/package-lock.json ] || [ -f $(NODE_STAMP) ] || \
	  { echo "make: installing node-soap (npm ci in $(NODE_DIR))"; (cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error) && touch $(NODE_STAMP); }

run: $(STAMP)
	@echo "make: starting vbios devrun (home $(VBIOS_HOME))"
	@$(BIN)/vbios devrun --home "$(VBIOS_HOME)" --bind "$(BIND)" --demo-domain "$(DEMO_DOMAIN)"

lint: $(STAMP)
	$(BIN)/ruff check bios_ws clients/python tests bench
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

interop: $(STAMP) interop-deps
	$(BIN)/pytest -q tests/interop

# The WS-I Basic Profile 1.1 suite (tests/conformance); URL=https://host:8443/ and
# BUNDLE=/path/to/guest-bundle check a deployment (read-only), none a server of its own
conformance: $(STAMP)
	VBIOS_CONFORMANCE_URL=$(URL) VBIOS_CONFORMANCE_BUNDLE=$(BUNDLE) $(BIN)/pytest -q tests/conformance

test: $(STAMP) interop-deps
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q tests

# The published contract, its copy in the guest library and docs/operations.md
wsdl: $(STAMP)
	$(BIN)/vbios wsdl > wsdl/vbios.wsdl
	cp wsdl/vbios.wsdl clients/python/vbios_client/wsdl/vbios.wsdl
	$(BIN)/python -m bios_ws.soap.operations_doc > docs/operations.md

# wsdl/v1-baseline.json, the v1 promise, taken from the WSDL on purpose (refused while a
# change breaks v1: see docs/contract.md)
baseline: $(STAMP)
	$(BIN)/python -m bios_ws.soap.baseline update

$(PEER_STAMP): Makefile
	@[ -x $(PEER_VENV)/bin/python ] || { echo "make: creating the peer virtualenv $(PEER_VENV)"; $(PYTHON) -m venv $(PEER_VENV); }
	@echo "make: installing the peer ($(PEER_PACKAGES))"
	@$(PEER_VENV)/bin/python -m pip install -q $(PEER_PACKAGES)
	@touch $@

peer: $(PEER_STAMP)

bench: $(STAMP) $(PEER_STAMP)
	$(BIN)/python bench/roundtrip.py --calls 300 --rounds 3
	$(BIN)/python bench/concurrency.py --peer-python $(PEER_VENV)/bin/python
	$(BIN)/python bench/footprint.py
	$(BIN)/python bench/update.py --rounds 5
	$(BIN)/python bench/events.py --rounds 5

clean:
	rm -rf $(VENV) $(PEER_VENV) build *.egg-info clients/python/*.egg-info
