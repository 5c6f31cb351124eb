#!/usr/bin/env bash
# Prints the Nix vendorHash of the main module: the hash of the directory
# `go mod vendor` makes, as buildGoModule computes it. With --check, compares
# it with flake.nix. Needs nix-hash (Debian: nix-bin) and Go.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files -z -- go.mod go.sum '*.go' ':!:integration/vault' ':!:integration/openbao' ':!:integration/vaultcli' ':!:integration/baocli' ':!:testdata' | xargs -0 cp --parents -t "$tmp"
(cd "$tmp" && GOFLAGS=-mod=mod go mod vendor)
b32=$(nix-hash --type sha256 --base32 "$tmp/vendor")
sri=$(nix --extra-experimental-features nix-command hash to-sri --type sha256 "$b32")
if [ "${1:-}" = --check ]; then
  if ! grep -q "vendorHash = \"$sri\"" flake.nix; then
    echo "flake.nix vendorHash is out of date; set it to $sri" >&2
    exit 1
  fi
  echo "flake.nix vendorHash $sri matches"
else
  echo "$sri"
fi
