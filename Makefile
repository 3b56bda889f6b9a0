# Two commands do everything: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# pytest-xdist processes for `make test`: the suite takes about half the time on 2 cores
TEST_WORKERS ?= 2
# Debian packages of the offline datasets the tests read where installed (tests/data/test_photos.py)
TEST_DATASETS ?= tuxpaint-stamps-default

.PHONY: demo test test-datasets bench clean notebooks executed-notebooks labs lab slurm-test

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[data,test,lab]"
	touch $@

demo: $(VENV)/.installed  ## the main job on its offline default
	$(PY) -m keras_tl.fne

test: $(VENV)/.installed  ## the test suite, in TEST_WORKERS processes (make test TEST_WORKERS=0: one process)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

test-datasets:  ## root on Debian: apt-get the datasets the tests read (TEST_DATASETS, without Tux Paint itself)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_DATASETS) >/dev/null

bench: $(VENV)/.installed  ## every benchmark; figures go to bench/RESULTS.md by hand
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

notebooks: $(VENV)/.installed  ## labs/*.ipynb (teacher) and labs/student/*.ipynb from the percent scripts
	$(PY) labs/build_notebooks.py

executed-notebooks: $(VENV)/.installed  ## run the teacher notebooks at full size and keep their figures (about 25 min)
	$(PY) labs/build_notebooks.py --execute

lab: $(VENV)/.installed  ## JupyterLab on the labs, in the browser (Ctrl-C stops it)
	$(VENV)/bin/jupyter lab labs/

labs: notebooks  ## execute every lab notebook at small size (KERAS_TL_LAB_SMALL=1)
	$(PY) -m pytest -q tests/test_labs.py

slurm-test: $(VENV)/.installed  ## root on Debian: apt-get slurm-wlm + munge, a one-node cluster, each sbatch script
	bash labs/slurm/test_slurm.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
