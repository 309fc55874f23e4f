# Two commands for a new user: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench fuzz mutation clean

$(STAMP): pyproject.toml submit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./submit -e '.[dev]'
	# again on its own: an older copy of the engine that shipped the imvo-submit command removes it when replaced
	$(BIN)/pip install --quiet --no-deps --force-reinstall -e ./submit
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m aggregator.demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench

# Longer fuzzing of envelope parsing and the readers; FUZZ_ENGINE=atheris if `pip install atheris` works.
FUZZ_EXAMPLES ?= 3000
FUZZ_SECONDS ?= 120
FUZZ_ENGINE ?= hypothesis
fuzz: $(STAMP)
	$(BIN)/python fuzz/fuzz_inputs.py --examples $(FUZZ_EXAMPLES) --seconds $(FUZZ_SECONDS) --engine $(FUZZ_ENGINE)

# Mutation testing (mutmut) of the disclosure core, validation, the envelope and history; not part of `make test`.
# MODULES=rules envelope ... picks modules (default all); reports in bench/results/mutation-<module>.md.
MODULES ?=
MUTATION_JOBS ?= 1
MUTATION_STAMP := $(VENV)/.mutation-installed
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ./submit -e '.[dev,mutation]'
	$(BIN)/pip install --quiet --no-deps --force-reinstall -e ./submit
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python -m bench.mutation --jobs $(MUTATION_JOBS) $(MODULES)

clean:
	rm -rf $(VENV) work out .pytest_cache
