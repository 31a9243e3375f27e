# Every target works from a fresh clone: the ones that need Python depend on the install stamp.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
# onnx imports ml_dtypes in every process: 0.7.0 takes ~1 s to import, 0.6.0 ~0.15 s (BENCHMARKS.md,
# entry 21), which halves make test. pyproject.toml leaves it open; the newest stack runs 0.7.0.
ML_DTYPES_VERSION ?= 0.6.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-fast test-matrix lint figure bench clean

install: $(STAMP)

# Torch goes in first, pinned: an unpinned torch drags in a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev,render]" "ml_dtypes==$(ML_DTYPES_VERSION)"
	touch $(STAMP)

# The main job on the lecture's exercise model: its summary, then export + onnxruntime vs PyTorch.
demo: $(STAMP)
	$(BIN)/inspector summary exercise_model
	$(BIN)/inspector verify exercise_model

# One pytest-xdist worker per core, then, alone, the tests that must not share the cores (signals,
# the browser, the soak: marked serial by tests/conftest.py). Both runs run; either failing fails.
test: $(STAMP)
	status=0; \
	$(BIN)/python -m pytest -q -n auto -m "not serial and not slow" || status=$$?; \
	$(BIN)/python -m pytest -q -m "serial and not slow" || status=$$?; \
	exit $$status

# What make test leaves out: the tests marked slow (the README walkthrough, the big models, the
# MobileNetV3s, the soak), in the same two runs. CI runs both targets.
test-slow: $(STAMP)
	status=0; \
	$(BIN)/python -m pytest -q -n auto -m "slow and not serial" || status=$$?; \
	$(BIN)/python -m pytest -q -m "slow and serial" || status=$$?; \
	exit $$status

# The edit-test loop: one worker per core (pytest-xdist), and nothing that starts a process of its own.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow and not browser and not subprocess" \
		--hypothesis-profile fast

# The fast subset on each stack the ranges in pyproject.toml promise (stacks/: the floors, the
# newest releases, and the pin above), each in its own .venv-STACK. `make test-matrix STACKS=floors`
# runs one; `STACKS=cuda-image` runs a CUDA image's releases (stacks/cuda-image.txt, a build of
# several GB: not in the default).
STACKS ?= floors newest pinned
test-matrix:
	@failed=""; for stack in $(STACKS); do \
		TORCH_VERSION=$(TORCH_VERSION) bash stacks/run.sh $$stack || failed="$$failed $$stack"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-matrix failed on:$$failed"; exit 1; fi

lint: $(STAMP)
	$(BIN)/ruff check inspector models tests examples benchmarks
	$(BIN)/ruff format --check inspector models tests examples benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .venv-floors .venv-newest .venv-cuda-image build *.egg-info

# The README's pictures, drawn by Netron from our own exports: the exercise model, the lecture's
# Figure 1 (one MobileNetV3-Small block cut out as its own graph) and the whole network at depth 1.
figure: $(STAMP)
	mkdir -p docs
	$(BIN)/inspector render exercise_model --graph authored -o docs/exercise_model.png
	$(BIN)/inspector render mobilenet_v3_small --module features.4 -o docs/figure1.png
	$(BIN)/inspector render mobilenet_v3_small --depth 1 -o docs/mobilenet_v3_small_depth1.png

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet "polygraphy>=0.49"
	$(BIN)/python benchmarks/run.py
