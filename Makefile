# Two commands do all the set-up: `make demo` (install if needed, run the DAG on the generated demo data)
# and `make test` (install if needed, run the tests). Everything else here is a convenience.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test bench lock params-check clean-data

setup: $(STAMP)

# Re-running is a no-op unless pyproject.toml or constraints.txt changed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/dvc config core.analytics false
	$(VENV)/bin/dvc repro
	$(VENV)/bin/dvc metrics show || true

# pytest exits 5 when it collected nothing: that is a broken test tree, not a pass.
test: setup
	$(PY) -m pytest -q --timeout=900 tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; exit $$rc

bench: setup
	$(PY) -m pipeline.benchmarks

params-check: setup
	$(VENV)/bin/remot params check

# Regenerate the exact pins after a deliberate upgrade.
lock: setup
	( echo "# Exact versions tested together (python 3.11, x86_64). Regenerate: make lock"; \
	  $(PY) -m pip list --format=freeze --exclude-editable | grep -vE '^(pip|setuptools|wheel)==' | sort -f ) > constraints.txt

clean-data:
	rm -rf data reports metrics plots
