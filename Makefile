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

# The widgets' static twins on the built site: every slider and play button changes the image in
# headless Chromium with no kernel and all non-local requests blocked, at 1400 and 420 px; page
# weight under 5 MB; screenshots in _build/twins-check/. Needs `make book` first.
.PHONY: twins-check
twins-check: install
	test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }
	$(BIN)/python tests/twins_site_check.py
