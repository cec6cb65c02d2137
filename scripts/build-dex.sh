#!/usr/bin/env bash
# Builds Dex from the Go module proxy into $1 (the binary's path), for the real-IdP tests.
# The proxy refuses Dex's v2.x tags (github.com/dexidp/dex is not a /v2 module) but serves the
# pseudo-version of a tag's commit. The module zip lacks the nested api/v2 module that go.mod's
# `replace … => ./api/v2` points at, so the copy requires the published api/v2 instead.
set -euo pipefail
out=$1
version=$2      # pseudo-version of the tag's commit
api_version=$3  # published github.com/dexidp/dex/api/v2
label=$4        # the tag, printed by `dex version`
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
dir=$(go mod download -json "github.com/dexidp/dex@${version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "build-dex: go mod download gave no folder for dex@${version}" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$dir/." "$work/"
chmod -R u+w "$work"
cd "$work"
go mod edit -dropreplace=github.com/dexidp/dex/api/v2 -require="github.com/dexidp/dex/api/v2@${api_version}"
go mod download github.com/dexidp/dex/api/v2
mkdir -p "$(dirname "$out")"
go build -trimpath -ldflags "-X main.version=${label}" -o "$out.tmp" ./cmd/dex
mv "$out.tmp" "$out"
"$out" version
