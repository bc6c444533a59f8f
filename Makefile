# The two commands of the README, and the tools around them. Every target bootstraps .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What `make run` needs, and the tools too (tests, linters, pip-audit): each installed from its
# lock file, every version pinned and every file's hash checked (pip-compile --generate-hashes;
# `make lock` writes them again after pyproject.toml changes).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev

.PHONY: run test lint audit bench i18n lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/educonnect-bot run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Known vulnerabilities fail the run; without the advisory database it says so and goes on.
audit: $(STAMP)
	$(BIN)/python .ci/audit

# One test process more than the machine has cores: the end-to-end tests spend much of their
# time waiting for the processes and servers they start (the bot, PostgreSQL, SMTP, Chromium),
# and a third process on 2 cores fills it (2,068 tests: 582 s with 2, 484 s with 3, 460 s
# with the caches below; 4 was slower again). Since the test processes hash at argon2's lowest
# cost and start faster, 361 s with 3 and 340 s with 4: within this machine's noise, and 4
# crowds the end-to-end tests' timing, so 3 stays. `make test TEST_WORKERS=1`: one at a time.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(len(getattr(os, 'sched_getaffinity', lambda _: range(os.cpu_count() or 1))(0)) + 1)")

# Bytecode caches are written even where the environment sets PYTHONDONTWRITEBYTECODE (some
# CI images do): the suite starts the bot and the CLI some 200 times and each test process
# rewrites 250 test modules; without caches every one of them compiles it all again (≈ 20 s
# of the run on 2 cores). They go to the __pycache__ folders git ignores.
test: lint audit
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml

# `make bench ARGS=--full` for the long versions (e.g. the 5-minute district load run).
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# Translations: extract every _() / N_() / ngettext() of bot/, handlers/ and models/ into
# locales/messages.pot (replaced only when an id changed, so an idle run leaves no diff), merge
# it into each locales/<lang>/LC_MESSAGES/messages.po (new ids come in empty, changed ones
# fuzzy, removed ones go), then compile each catalog to a throwaway folder to check it and
# count what is left to translate. The bot reads the .po itself: no .mo in the tree.
# tests/test_i18n.py fails until every id has a French translation. A new language (docs/PRODUCT.md):
#   .venv/bin/pybabel init -i locales/messages.pot -d locales -D messages -l ar
I18N_KEYWORDS := --no-default-keywords -k _ -k N_ -k ngettext:1,2
i18n: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/pybabel -q extract -F babel.cfg $(I18N_KEYWORDS) --add-location=file --sort-output \
		-c TRANSLATORS: --project="EduConnect assistant" --version=0.1 \
		-o "$$tmp/messages.pot" --input-dirs=. && \
	if diff -q -I '^"POT-Creation-Date:' "$$tmp/messages.pot" locales/messages.pot >/dev/null 2>&1; \
	then echo "locales/messages.pot: no new or changed message id"; \
	else cp "$$tmp/messages.pot" locales/messages.pot && echo "locales/messages.pot: updated"; fi && \
	$(BIN)/pybabel update -w 100 -i locales/messages.pot -d locales -D messages --ignore-obsolete && \
	for po in locales/*/LC_MESSAGES/messages.po; do \
		lang=$$(basename "$$(dirname "$$(dirname "$$po")")"); \
		$(BIN)/pybabel compile --statistics -D messages -l "$$lang" -i "$$po" \
			-o "$$tmp/$$lang.mo" || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
