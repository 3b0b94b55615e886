# mriseg: the two commands are `make demo` and `make test`; each sets itself up on a fresh clone.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip -q --disable-pip-version-check
TORCH := torch==2.14.1 torchvision==0.29.1
DEV := .venv/.dev-installed

.PHONY: niivue demo test sync-check pytest wheel-check readme docs tutorials bench clean

# Phantom cohort (made once, in data/phantom-demo) -> train (cpu preset) -> predict and evaluate the held-out patients, in runs/demo.
demo: $(DEV)
	.venv/bin/mriseg demo --out runs/demo --data data/phantom-demo

test: $(DEV) sync-check pytest wheel-check

# The dev venv: torch first (from this machine's disk where it lies there), then mriseg with the pinned nbdev 2 stack.
$(DEV): settings.ini setup.py
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[dev]"
	$(PY) setup.py -q niivue
	touch $@

# Notebooks are the source: cleaning and exporting them, and rendering README.md from index.ipynb, must change nothing.
SNAPSHOT = find nbs mriseg README.md -type f -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' | sort | xargs sha1sum | sha1sum
sync-check: $(DEV)
	@before=$$($(SNAPSHOT)); \
	.venv/bin/nbdev_clean && .venv/bin/nbdev_export && $(PY) .ci/nb2md.py nbs/index.ipynb README.md || exit 1; \
	if [ "$$before" != "$$($(SNAPSHOT))" ]; then git status --short -- nbs mriseg README.md; \
	  echo "nbdev_clean, nbdev_export or the README changed files: notebooks, library and README were out of step. Review and commit the result."; exit 1; fi
	@echo "notebooks, library and README are in step"

pytest: $(DEV)
	$(PY) -m pytest -n 2 --durations=10 tests

# The wheel, installed with the current fastai release (not the dev pin) into a venv of its own. That venv shares
# the dev venv's torch and CUDA libraries (~5.5 GB) through a .pth file rather than holding a second copy.
wheel-check: $(DEV)
	rm -rf dist && $(PY) -m build --wheel --outdir dist . > /dev/null
	test -f .venv-wheel/.shares-torch || { rm -rf .venv-wheel .venv-wheel-torch && $(PY) .ci/wheel_venv.py .venv-wheel && touch .venv-wheel/.shares-torch; }
	.venv-wheel/bin/pip -q --disable-pip-version-check install "$$(ls dist/mriseg-*.whl)[app,dicom]"
	.venv-wheel/bin/pip -q --disable-pip-version-check install --force-reinstall --no-deps dist/mriseg-*.whl
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python $(CURDIR)/.ci/wheel_smoke.py
	cd /tmp && $(CURDIR)/.venv-wheel/bin/mriseg --help > /dev/null && echo "wheel: mriseg --help ok"
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python $(CURDIR)/.ci/wheel_app.py

readme: $(DEV)
	$(PY) .ci/nb2md.py nbs/index.ipynb README.md

# The tutorials and the README's example, run again at full settings and saved, in the order they read each other's
# files (3 and 4 read tutorial 1's run): their numbers are their own. tests/test_tutorials.py fails until this has run
# after a change of the preset or the phantom.
TUTORIALS = 01_ten_minutes 03_widgets 04_reading_metrics 02_your_brats_data 05_which_network 06_the_app 07_from_the_scanner
tutorials: $(DEV)
	rm -rf nbs/tutorials/runs  # their own runs, made afresh: trained by this code (a finished run would be used again)
	$(PY) .ci/run_nb.py $(addprefix nbs/tutorials/,$(addsuffix .ipynb,$(TUTORIALS))) nbs/index.ipynb
	.venv/bin/nbdev_clean
	$(PY) .ci/nb2md.py nbs/index.ipynb README.md

# The docs site from the notebooks, without Quarto (nbdev_docs builds the Quarto one where Quarto is installed).
docs: $(DEV)
	$(PY) .ci/docs.py --out _docs

bench: $(DEV)
	$(PY) bench/phantom.py

clean:
	rm -rf dist build *.egg-info _docs _proc .venv-wheel .venv-wheel-torch
