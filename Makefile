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
book: install node_modules/.package-lock.json
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

# Library tests, data checks, the student edition, and every chapter under nbval, in one run, on
# TEST_WORKERS processes (pytest-xdist; a file's tests stay in one process, in order).
TEST_WORKERS ?= 2
test: nbval-notebooks
	$(BIN)/python -m pytest tests $(NBDIR) --nbval-lax -p no:cacheprovider --durations=15 \
	  -n $(TEST_WORKERS) --dist loadfile

student: install
	$(BIN)/python -m noneq.student student chapters student

bench: install
	$(BIN)/python -m noneq.bench

clean:
	rm -rf _build student .jupyter_cache

# ---------------------------------------------------------------------------------------------
# The website (site): MathJax served from the site, the browser check, code formatting
# ---------------------------------------------------------------------------------------------
.PHONY: site-check format format-check

# MathJax at the exact version of package.json/package-lock.json, into node_modules/ (git-ignored);
# noneq._sphinx copies it into the built site. Installs Debian's npm when it is missing.
node_modules/.package-lock.json: package.json package-lock.json
	command -v npm >/dev/null || { apt-get update && apt-get install -y npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# Every page of the built site in Debian's chromium at 1400 px and 420 px, offline (requests not
# for 127.0.0.1 are aborted): menu, console, math, overflowing blocks, figure text, page weight.
# Screenshots and report.md in _build/site-check/. Run `make book` first. A subset while
# developing: $(BIN)/python tests/browser/site_check.py --pages ness_sgd,api --checks math
site-check: install
	test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }
	$(BIN)/python tests/browser/site_check.py --html _build/html --out _build/site-check

# Code cells of the chapters formatted to the column: ruff format at 88 characters, cell by cell
# (noneq.format_cells; the Markdown and the cell options are left as they are). format-check
# changes nothing and fails naming the chapters whose code cells are not formatted.
format: install
	$(BIN)/python -m noneq.format_cells chapters/*.md

format-check: install
	$(BIN)/python -m noneq.format_cells --check chapters/*.md

# --- assignments (helper `assign`): nbgrader course, student edition, site without solutions ---
.PHONY: assignments book-student
# nbgrader course directory: nbgrader_config.py, source/<chapter>/ (solutions, hidden tests) and
# release/<chapter>/ (the student notebooks); see chapters/instructors.md.
assignments: install
	rm -rf _build/course/source _build/course/release
	$(BIN)/python -m noneq.student course chapters _build/course

# The website without solutions (and without the self-checks' printed results), for the weeks an
# assignment is open: _build/html-student (noneq._sphinx_student; sphinx-exercise's hide_solutions
# leaves gated solutions on the page). Shares the execution cache with `make book`.
book-student: install
	mkdir -p _build
	$(BIN)/python -c "import yaml; c = yaml.safe_load(open('_config.yml')); \
	  c.setdefault('sphinx', {}).setdefault('extra_extensions', []).append('noneq._sphinx_student'); \
	  yaml.safe_dump(c, open('_build/_config-student.yml', 'w'), allow_unicode=True, sort_keys=False)"
	$(BIN)/jupyter-book build . --config _build/_config-student.yml --path-output _build/student-site -W -n --keep-going
	rm -rf _build/html-student && mv _build/student-site/_build/html _build/html-student && rm -rf _build/student-site
	@echo "Site without solutions: _build/html-student/index.html"

# The widgets' static twins on the built site: every slider and play button changes the image in
# headless Chromium with no kernel and all non-local requests blocked, at 1400 and 420 px; page
# weight under 5 MB; screenshots in _build/twins-check/. Needs `make book` first.
.PHONY: twins-check
twins-check: install
	test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }
	$(BIN)/python tests/twins_site_check.py

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
