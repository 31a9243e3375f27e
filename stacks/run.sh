#!/usr/bin/env bash
# Run the test suite's fast subset on one stack of releases pyproject.toml admits:
#   floors   the oldest release of each range (floors.txt)
#   newest   the newest release of each (newest.txt: no pins)
#   pinned   the Makefile's own .venv (torch $TORCH_VERSION, the rest as make install left them)
#   cuda-image  a CUDA image's releases (cuda-image.txt; not in `make test-matrix`'s default)
# Each stack has its own virtual environment, .venv-STACK, rebuilt when its constraints or
# pyproject.toml change. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: stacks/run.sh floors|newest|pinned|cuda-image [pytest args]}
shift
PYTHON=${PYTHON:-python3}

if [ "$stack" = pinned ]; then
    make install
    venv=.venv
else
    constraints=stacks/$stack.txt
    [ -f "$constraints" ] || { echo "stacks/run.sh: no stack named $stack" >&2; exit 2; }
    venv=.venv-$stack
    stamp=$venv/.installed
    if [ ! -f "$stamp" ] || [ "$constraints" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
        # The stack's own releases only: no machine-wide constraint or local wheel folder.
        export PIP_CONFIG_FILE=/dev/null PIP_CONSTRAINT=
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        upgrade=()
        [ "$stack" = newest ] && upgrade=(--upgrade --upgrade-strategy eager)
        "$venv/bin/python" -m pip install --quiet "${upgrade[@]}" -c "$constraints" -e ".[dev]"
        touch "$stamp"
    fi
fi

echo "== $stack: $("$venv/bin/python" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("torch", "onnx", "onnxruntime", "onnxscript", "transformers")))')"
# make test-fast's subset: one worker per core, nothing slow, no browser, no process of its own.
exec "$venv/bin/python" -m pytest -q -n auto -m "not slow and not browser and not subprocess" \
    --hypothesis-profile fast -p no:cacheprovider "$@"
