# Two commands on a fresh machine (Python 3.11, Debian packages from .ci/run's list for the tests):
#   make demo   install into .venv, build the ONNX bundle, then render the bundled example through the bundled preset
#   make test   install into .venv, build the ONNX bundle, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= out/violin_phrase-to-flute.wav
# The ONNX bundle is built from the committed checkpoints (byte-identical on every build with the pinned torch),
# not committed: 36 MiB of exports would leave a lent GPU machine no room for training data (64 MiB per call).
BUNDLE := models/bundle/bundle.json
CHECKPOINTS := models/codec.pt $(sort $(wildcard models/denoisers/*.pt)) $(sort $(wildcard models/decoders/*.pt))

.PHONY: install bundle demo test bench

install: $(VENV)/.installed

bundle: $(BUNDLE)

$(BUNDLE): $(VENV)/.installed $(CHECKPOINTS)
	$(PY) -m export.onnx $(CHECKPOINTS) --out models/bundle --audio examples/violin_phrase.flac

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@

demo: install $(BUNDLE)
	$(PY) -m live.render examples/violin_phrase.flac $(DEMO_OUT) --preset violin-to-flute
	@echo "result: $(DEMO_OUT)"

# pytest exits 5 when it collects no test; that is not a failure of the suite
test: install $(BUNDLE)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

bench: install $(BUNDLE)
	$(PY) -m live.bench --json out/bench.json
