# The project's commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The locks: every package and its hashes, for Python 3.11 on Linux x86_64.
# requirements.lock is the runtime (the Docker image); requirements-dev.lock adds the
# test and bench extras (make install). Both come from pyproject.toml by `make lock`.
LOCK       := requirements.lock
DEV_LOCK   := requirements-dev.lock
PIP_VERSION := 26.3
UV_VERSION  := 0.13.9
LOCK_VENV  := $(VENV)/lock-tools
UV_COMPILE := $(LOCK_VENV)/bin/uv pip compile pyproject.toml --no-config --quiet \
              --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
              --generate-hashes --custom-compile-command "make lock"

.PHONY: install lock run run-gateway run-registration run-capacity run-notification test \
        test-unit lint services tools mail catalogs clean bench mutate

install: $(STAMP)

# Reinstall only when the dependencies or their lock change. The lock is installed as it
# is (hashes checked, nothing resolved), then the project without dependencies; the
# dry run fails if pyproject.toml asks for something the lock does not pin.
$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	$(PY) -m pip install --quiet --dry-run --no-index --no-build-isolation -e '.[test,bench]' \
	    || { echo "$(DEV_LOCK) is out of date with pyproject.toml: run make lock" >&2; exit 1; }
	touch $(STAMP)

# Regenerate both locks from pyproject.toml with uv (pinned, in its own venv). Versions
# already locked are kept where pyproject.toml still allows them; `make lock
# LOCK_ARGS=--upgrade` moves everything to the newest allowed. The runtime lock is
# constrained to the dev lock, so the image runs exactly the versions the tests ran.
lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV_COMPILE) --extra test --extra bench $(LOCK_ARGS) -o $(DEV_LOCK)
	$(UV_COMPILE) --constraint $(DEV_LOCK) $(LOCK_ARGS) -o $(LOCK)

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

test: install lint services tools
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff (ruff.toml) and mypy ([tool.mypy] in pyproject.toml); make test runs it first.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The registration pipeline under load (bench/README.md); not part of make test.
# BENCH_ARGS e.g. "--scenarios a,b --scale 0.1 --label after".
bench: install services
	$(PY) -m bench $(BENCH_ARGS)

test-unit: install
	$(PY) -m pytest tests --ignore=tests/integration --ignore=tests/faults --ignore=tests/e2e $(PYTEST_ARGS)

# Mutation testing of the modules that keep the guarantees (docs/reliability.md;
# [tool.mutmut] in pyproject.toml names them and the tests); not part of make test, about
# 15 minutes. mutmut mutates a copy of the code in mutants/ and runs the in-process tests
# against each mutant; the summary counts killed / survived / timeout per module, and
# `.venv/bin/mutmut results` lists the survivors (`mutmut show <name>`: the change).
# MUTATE_JOBS: mutants tested at once.
MUTATE_JOBS ?= 2
mutate: install services
	rm -rf mutants && mkdir mutants
	@start=$$(date +%s); \
	LEDGER_PROFILE=mutation $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) > mutants/run.log 2>&1 \
	    || { tr '\r' '\n' < mutants/run.log | tail -n 40; exit 1; }; \
	echo "mutmut run: $$(( $$(date +%s) - start )) s"
	@$(VENV)/bin/mutmut results --all true | awk -F': ' ' \
	    function row(m, k, s, t, n, o) { return sprintf("%-36s %7s %9s %8s %9s %6s", m, k, s, t, n, o) } \
	    { m = $$1; sub(/^ +/, "", m); sub(/\.[^.]*$$/, "", m); modules[m] = 1; \
	      s = ($$2 == "killed" || $$2 == "survived" || $$2 == "timeout" || $$2 == "no tests") ? $$2 : "other"; \
	      count[m, s]++; count["total", s]++ } \
	    END { print row("module", "killed", "survived", "timeout", "no tests", "other"); \
	          for (m in modules) print row(m, count[m, "killed"] + 0, count[m, "survived"] + 0, count[m, "timeout"] + 0, \
	                                 count[m, "no tests"] + 0, count[m, "other"] + 0) | "sort"; \
	          close("sort"); \
	          print row("total", count["total", "killed"] + 0, count["total", "survived"] + 0, \
	              count["total", "timeout"] + 0, count["total", "no tests"] + 0, count["total", "other"] + 0) }'

clean:
	rm -rf var .pytest_cache mutants

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
