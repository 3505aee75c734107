# The project's commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run run-gateway run-registration run-capacity run-notification test \
        test-unit services tools mail catalogs clean bench

install: $(STAMP)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

run: install
	$(PY) -m shared.supervisor

run-gateway run-registration run-capacity run-notification: run-%: install
	$(PY) -m services.$*

# A local SMTP server that prints every message it receives (port 1025).
mail: install
	$(PY) -m aiosmtpd -n -l $${SMTP_HOST:-localhost}:$${SMTP_PORT:-1025} -c aiosmtpd.handlers.Debugging

# Chromium, docker-compose and promtool for the tests (Debian's packages).
tools:
	@sh tests/install-tools.sh

# Start RabbitMQ and PostgreSQL if they are installed but stopped.
services:
	@sh tests/start-services.sh

test: install services tools
	$(PY) -m pytest $(PYTEST_ARGS)

# The registration pipeline under load (bench/README.md); not part of make test.
# BENCH_ARGS e.g. "--scenarios a,b --scale 0.1 --label after".
bench: install services
	$(PY) -m bench $(BENCH_ARGS)

test-unit: install
	$(PY) -m pytest tests --ignore=tests/integration --ignore=tests/faults --ignore=tests/e2e $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache

# Re-extract the strings of the emails and of the pages; then translate the new
# entries in services/<service>/locales/<lang>/LC_MESSAGES/messages.po.
catalogs: install
	for service in notification gateway; do \
	    $(VENV)/bin/pybabel extract -F babel-$$service.cfg --no-location --omit-header \
	        -o services/$$service/locales/messages.pot . ; \
	    for lang in ar fr tr es ur ms; do \
	        if [ -f services/$$service/locales/$$lang/LC_MESSAGES/messages.po ]; then \
	            $(VENV)/bin/pybabel update --width 100 --no-fuzzy-matching -D messages \
	                -i services/$$service/locales/messages.pot -d services/$$service/locales -l $$lang; \
	        else \
	            $(VENV)/bin/pybabel init --width 100 -D messages -i services/$$service/locales/messages.pot \
	                -d services/$$service/locales -l $$lang; \
	        fi; \
	    done; \
	done
