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
# iproute2 (ss: a test reads the listen backlog)
APT_PACKAGES := python3.11 python3.11-venv python3.11-dev gcc pkg-config libffi-dev libssl-dev \
                ca-certificates swtpm swtpm-tools tpm2-tools libtss2-dev \
                qemu-system-x86 qemu-utils ovmf gnu-efi sbsigntool iproute2
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
	@echo "make run   install what is missing, then serve the vBIOS on https://$(BIND)/"
	@echo "make test  install what is missing, then lint and run the whole suite"

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): setup.cfg pyproject.toml clients/python/setup.cfg clients/python/pyproject.toml
	@$(MAKE) --no-print-directory deps
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -e clients/python
	@touch $@

install: $(STAMP)

interop-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(INTEROP_APT)"
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps APT_PACKAGES="nodejs npm"
	@[ ! -f $(NODE_DIR)/package-lock.json ] || [ -f $(NODE_STAMP) ] || \
	  { (cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error) && touch $(NODE_STAMP); }

run: $(STAMP)
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
	@[ -x $(PEER_VENV)/bin/python ] || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q $(PEER_PACKAGES)
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
