# Two commands on a fresh machine (Python 3.11, Debian packages from .ci/run's list for the tests):
#   make demo   install into .venv, then render the bundled example through the bundled preset
#   make test   install into .venv, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= out/violin_phrase-to-flute.wav

.PHONY: install demo test bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@

demo: install
	$(PY) -m live.render examples/violin_phrase.flac $(DEMO_OUT) --preset violin-to-flute
	@echo "result: $(DEMO_OUT)"

# pytest exits 5 when it collects no test; that is not a failure of the suite
test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

bench: install
	$(PY) -m live.bench --json out/bench.json
