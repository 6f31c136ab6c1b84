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
	$(BIN)/python -m noneq.student student chapters student

bench: install
	$(BIN)/python -m noneq.bench

clean:
	rm -rf _build student .jupyter_cache

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
