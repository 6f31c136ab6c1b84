# The two commands of the README, `make book` and `make test`, do all set-up on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBDIR  := _build/nbval
# chapters that are not run as notebook tests, each with a reason (keep this empty)
NBVAL_SKIP :=

.PHONY: install book test nbval-notebooks student bench clean

install: $(STAMP)

$(STAMP): requirements.txt lib/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Execute every chapter (cached by jupyter-cache) and build the site into _build/html.
# -W -n --keep-going: any warning, broken reference or cell error fails the build.
book: install
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Site built: open _build/html/index.html"

# Convert the MyST chapters to notebooks in a scratch folder for nbval.
nbval-notebooks: install
	rm -rf $(NBDIR) && mkdir -p $(NBDIR)
	for f in chapters/*.md; do \
	  name=$$(basename $$f .md); \
	  grep -q '^kernelspec:' $$f || continue; \
	  case " $(NBVAL_SKIP) " in *" $$name "*) echo "skip $$name"; continue;; esac; \
	  $(BIN)/jupytext --quiet --to ipynb -o $(NBDIR)/$$name.ipynb $$f; \
	done

# Library tests, data checks, the student edition, and every chapter under nbval, in one run.
test: nbval-notebooks
	$(BIN)/python -m pytest tests $(NBDIR) --nbval-lax -p no:cacheprovider

student: install
	$(BIN)/python -m noneq.student chapters student

bench: install
	$(BIN)/python -m noneq.bench

clean:
	rm -rf _build student .jupyter_cache

# Binder check (tests/binder/check.py): build the environment a Binder launch gets, the way
# repo2docker builds it (tests/binder/build_env.sh: repo2docker's base lock, then requirements.txt,
# then postBuild; reused while those inputs are unchanged), start JupyterLab on one core and open
# every chapter through its launch URL in Debian's headless chromium: opens as a notebook, MyST
# renders, Run All without errors, a widget responds, Lab's save keeps the file. Per-chapter time
# and peak kernel memory, screenshots and report.md in _build/binder-check/.
BINDER_ENV  := _build/binder-env
BINDER_HOME := _build/binder-home
.PHONY: binder-check
binder-check:
	test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }
	command -v taskset >/dev/null || { apt-get update && apt-get install -y util-linux; }
	tests/binder/build_env.sh $(BINDER_ENV) $(BINDER_HOME)
	$(BINDER_ENV)/bin/python tests/binder/check.py --env $(BINDER_ENV) --home $(BINDER_HOME)
