# The two commands: `make lab` (bring up the two-site lab) and `make test` (run every test).
# Both install what they need on a fresh Debian machine, as root.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help
STACK ?= lab
VENV := .venv
PY := $(VENV)/bin/python
REQS := $(wildcard requirements/*.txt)
PYTEST := $(PY) -m pytest
# Machines with local package mirrors configured make pip warn about each absent one.
PIP_NOISE := is ignored: it is neither a file nor a directory

.PHONY: help venv portal portal-screenshots lab lab-hosts down status test test-unit test-lab lint host verify bench diagram callflow capture dashboard-screenshot phone-screenshot inventories clean-venv

help:
	@echo "make lab     bring up both sites on the local Docker Engine, print endpoints + demo tenant"
	@echo "make test    lint, unit/IaC/app tests, then the lab integration tests"
	@echo "make down    remove the lab's containers, networks and volumes (nothing else)"
	@echo "make status  the lab's table: site, service, container, health, endpoints"
	@echo "make verify  testinfra checks against the running lab"
	@echo "make bench   benchmarks, results in bench/results/"
	@echo "make capture CALL_ID=... [SVG=f.svg]  a call from the SIP capture (NUMBER=... lists calls)"
	@echo "make dashboard-screenshot  the operator's dashboard: docs/observability/dashboard.png"
	@echo "make phone-screenshot  the browser phone in a call (German): docs/portal/phone.png"
	@echo "make portal  bundle the web portal (portal/) into pbx_app/web/static/"
	@echo "make portal-screenshots  pictures of the portal (German) in docs/portal/"

$(VENV)/.installed: $(REQS)
	@scripts/bootstrap-python.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "==> installing Python dependencies (requirements/*.txt)"
	@$(PY) -m pip install -q --upgrade pip 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	@$(PY) -m pip install -q $(foreach r,$(REQS),-r $(r)) 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	@touch $@

venv: $(VENV)/.installed

# The web portal (portal/, npm + esbuild) bundled into pbx_app/web/static/: the app serves it
# and the app image carries it. Rebuilt only when a source, the lock or the script changed.
PORTAL_BUNDLE := pbx_app/web/static/app.js
PORTAL_SOURCES := $(shell find portal/src -type f 2>/dev/null) portal/package.json portal/package-lock.json

$(PORTAL_BUNDLE): $(PORTAL_SOURCES) scripts/build-portal.sh
	@scripts/build-portal.sh

portal: $(PORTAL_BUNDLE)

# Pictures of the portal's main pages (German) for the README, from the demo on loopback.
portal-screenshots: venv portal
	@scripts/install-test-tools.sh
	@$(PY) -m labkit.portal_screenshots docs/portal

# Host layer: Docker Engine (started with or without systemd) and the locally seeded base image.
host: venv
	@echo "==> preparing this host with Ansible (roles/docker_host)"
	@ANSIBLE_STDOUT_CALLBACK=default $(VENV)/bin/ansible-playbook -i inventories/lab playbooks/docker_hosts.yml

lab: host portal
	@$(PY) -m pbx_infra.lab up --stack $(STACK) $(LAB_UP_FLAGS)

down: venv
	@$(PY) -m pbx_infra.lab down --stack $(STACK)
	@scripts/labhosts.sh down

status: venv
	@$(PY) -m pbx_infra.lab status --stack $(STACK)

lint: venv
	@echo "==> ruff, mypy"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy pbx_infra pbx_app pbx_sip pbx_efax labkit __main__.py

# Tests that need neither Docker nor the lab: topology, the Pulumi program under mocks, the app.
test-unit: venv portal
	@scripts/install-test-tools.sh
	@# Every core, a test file per worker (its module fixtures stay in one process).
	@$(PYTEST) tests -m "not lab" -n auto --dist loadfile --durations=25

# Tests against real containers: images, the running lab, Ansible roles on stand-in hosts.
# A test run owns the lab: one left on this Docker Engine by another checkout (other secrets)
# is replaced, where `make lab` stops and says so.
test-lab: LAB_UP_FLAGS := --afresh-if-stale
test-lab: lab
	@scripts/install-test-tools.sh
	@$(PYTEST) tests -m "lab and not teardown" --durations=25
	@$(PYTEST) tests -m teardown

test: lint test-unit test-lab

# The two sites' stand-in hosts (Debian containers) prepared by the voice-host roles.
lab-hosts: host
	@scripts/labhosts.sh up
	@$(VENV)/bin/ansible-playbook -i inventories/lab-hosts playbooks/voice_hosts.yml

# testinfra against the running lab: one line per host/service check.
verify: lab-hosts
	@$(PYTEST) tests/infra -m lab -v

bench: lab portal
	@$(PY) -m bench

clean-venv:
	rm -rf $(VENV)

# The README's topology picture, drawn from the lab stack config (Graphviz from Debian).
# A real call between the sites, captured at every proxy and drawn message by message.
callflow: lab
	@$(PY) -m labkit.callflow docs/call-flow.svg

# A call from the sites' SIP capture: CALL_ID=... [SVG=call.svg], or NUMBER=... to list calls.
capture: venv
	@$(PY) -m pbx_infra.capture --stack $(STACK) $(if $(CALL_ID),--call-id '$(CALL_ID)') \
	  $(if $(NUMBER),--number '$(NUMBER)') $(if $(SVG),--svg '$(SVG)')

# The browser phone in a call (German), for the README: a call needs the lab.
dashboard-screenshot: lab
	@scripts/install-test-tools.sh
	@$(PY) -m labkit.dashboard_screenshot docs/observability/dashboard.png

phone-screenshot: lab
	@scripts/install-test-tools.sh
	@$(PY) -m labkit.phone_screenshot docs/portal/phone.png

diagram: venv
	@command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null)
	@$(PY) -m pbx_infra.diagram lab > docs/topology.dot
	@dot -Tsvg docs/topology.dot -o docs/topology.svg
	@echo "docs/topology.svg updated"

# Ansible inventories for production and the lab's stand-in hosts, from the stack configs.
inventories: venv
	@$(PY) -m pbx_infra.inventory
