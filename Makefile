# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ocplan check examples/mx1-8oam-air.yaml; test $$? -le 1
	$(BIN)/ocplan topology examples/mx1-8oam-air.yaml
	$(BIN)/ocplan check examples/nf5698g7-mi300x.yaml; test $$? -le 1
	$(BIN)/ocplan topology examples/nf5698g7-mi300x.yaml
	$(BIN)/ocplan check examples/ubb-1024-liquid.yaml; test $$? -le 1
	$(BIN)/ocplan topology examples/ubb-1024-liquid.yaml
	$(BIN)/ocplan estimate --model gpt3-175b --system examples/ubb-1024-liquid.yaml \
	    --chips 1024 --global-batch 1536 --seq-len 2048 --precision fp8 \
	    --tp 8 --pp 8 --vpp 6 --micro-batch 1 --zero 1 --train-tokens 300e9 --price 2.0
	$(BIN)/ocplan infer --model llama3-70b --chip mi300x --chips 8 --tp 8 \
	    --input-len 2048 --output-len 512 --weight-precision fp8 --activation-precision fp8 \
	    --kv-precision fp8 --load poisson --rate 4 --slo-ttft 2s --slo-tpot 50ms --price 2.0
	$(BIN)/ocplan match --workload examples/cloud-mix.yaml --top 5
	$(BIN)/ocplan compare examples/ubb-1024-liquid.yaml examples/mi325x-1024-air.yaml \
	    examples/gaudi3-1024-air.yaml --model llama3-405b --global-batch 2048 --seq-len 8192 \
	    --train-tokens 15e12 --price 3.5,2.5,1.8

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

test: $(STAMP) lint
	@if [ ! -x /usr/bin/chromium ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get update && DEBIAN_FRONTEND=noninteractive \
	            apt-get install -y --no-install-recommends chromium; \
	    else \
	        echo "*** no /usr/bin/chromium and no root to apt-get it: the browser tests" \
	             "(tests/test_browser.py) will be SKIPPED ***"; \
	    fi; \
	fi
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
