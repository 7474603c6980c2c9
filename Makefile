# vaelab: `make lab` opens the lessons, `make test` passes every test. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is pinned here so pip never resolves a (CUDA-sized) torch on its own; the package asks for torch>=2.2.
TORCH  ?= torch==2.13.0
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

# progress bars off in tests and stored notebooks (they would never compare equal); on in `make lab`
export TQDM_DISABLE ?= 1

.PHONY: lab test lessons student bench site setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[lab,test]"
	$(BIN)/python -m pip install --quiet -e ".[site]"
	touch $@

lab: $(STAMP) $(LAB_SETTINGS)
	env -u TQDM_DISABLE $(BIN)/jupyter lab $(ROOT_FLAG) --notebook-dir=notebooks

# JupyterLab's settings overrides (the same file Binder's postBuild installs): no "get notified about
# Jupyter news?" prompt
$(LAB_SETTINGS): binder/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp binder/overrides.json $@

test: $(STAMP)
	$(BIN)/python -m pytest

lessons: $(STAMP)
	$(BIN)/python .ci/lessons.py $(NOTEBOOKS)

# the student edition in student/ (solutions stubbed out, checkers report): `jupyter lab student` or Binder's second badge
student: $(STAMP)
	$(BIN)/python .ci/student.py notebooks student

# the course as a static website in build/site/ (website/build.py): no re-execution, no network
site: $(STAMP)
	$(BIN)/python website/build.py

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) student .pytest_cache
