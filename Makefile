# Two commands do everything on a fresh machine (each sets up what it needs first):
#   make book   -> installs, then builds the book (executing every notebook) into _build/html
#   make test   -> installs, then runs the whole test suite (unit, notebooks, book build, browser)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
VENDOR := book/_extra/vendor
WIDGETS_VERSION  := 1.0.15
REQUIREJS_VERSION := 2.3.7

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads made
# training steps up to 10x slower.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup browser book test serve lab clean

setup: $(STAMP) $(VENDOR)/.ok browser

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (srlib)" >/dev/null
	touch $@

# Self-hosted widget JavaScript (no CDN at view time): fetched from the npm registry at install time.
$(VENDOR)/.ok:
	rm -rf $(VENDOR) .cache/npm && mkdir -p $(VENDOR)/html-manager .cache/npm
	cd .cache/npm && npm pack --silent @jupyter-widgets/html-manager@$(WIDGETS_VERSION) requirejs@$(REQUIREJS_VERSION) >/dev/null
	tar -xzf .cache/npm/jupyter-widgets-html-manager-$(WIDGETS_VERSION).tgz -C $(VENDOR)/html-manager --strip-components=2 package/dist
	tar -xzf .cache/npm/requirejs-$(REQUIREJS_VERSION).tgz -C $(VENDOR) --strip-components=1 package/require.js
	touch $@

# Chromium for the offline browser test (Debian's package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: install Chromium (Debian: apt-get install chromium) for the browser test"; fi; }

book: setup
	$(VENV)/bin/jupyter-book build . --builder html
	@echo "Open _build/html/index.html, or run: make serve"

test: setup
	SRLIB_BUDGET=smoke $(PY) -m pytest tests srlib book --doctest-modules --nbval-lax -p no:cacheprovider

serve:
	$(PY) -m http.server --directory _build/html 8000

lab: setup
	$(VENV)/bin/jupyter lab book

clean:
	rm -rf _build
