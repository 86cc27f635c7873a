#!/bin/sh
# fetch-llama.sh: fetches the pinned llama.cpp source and builds libllama (CPU
# only, Release, shared, portable) into a cache folder, for integrations/llama.
# Reuses the folder when it is already complete, so it is cheap after the first
# run. Prints nothing but progress; the result is
#   $UNIPOOL_CACHE/llama-$LLAMA_COMMIT/install  (find_package(llama) finds it)
#   $UNIPOOL_CACHE/llama-$LLAMA_COMMIT/src      (gguf-py, used by the tests)
# where UNIPOOL_CACHE defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/unipool.
#
# The source comes from the npm package node-llama-cpp, which ships llama.cpp
# as a git bundle (package/llama/gitRelease.bundle). Both the tarball's sha256
# and the bundle's commit are checked. To move the pin: pick a node-llama-cpp
# version, `npm pack node-llama-cpp@VERSION`, run `sha256sum` on the tarball and
# `git bundle list-heads package/llama/gitRelease.bundle`, update the three
# values below, then run the llama tests (tests/llama): the layout probe tells
# whether the new llama.cpp still writes the sequence state this code reads.
# On macOS, use Homebrew's llama.cpp (`brew install llama.cpp`) instead.
set -eu

LLAMA_NPM_PACKAGE=node-llama-cpp@3.22.1
LLAMA_NPM_SHA256=a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
LLAMA_COMMIT=de3ff815ea7d559ee917f063901b8986f038abc6

cache=${UNIPOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unipool}
root=$cache/llama-$(echo "$LLAMA_COMMIT" | cut -c1-8)
if [ -f "$root/install/.complete" ]; then
  echo "fetch-llama: libllama $LLAMA_COMMIT already built in $root"
  exit 0
fi

if command -v apt-get >/dev/null; then
  "$(dirname "$0")/apt-ensure.sh" fetch-llama npm git cmake ninja-build
fi
for tool in npm git cmake ninja; do
  command -v "$tool" >/dev/null || {
    echo "fetch-llama: '$tool' is needed (Debian: apt-get install npm git cmake ninja-build)" >&2
    exit 1
  }
done

mkdir -p "$root"
work=$(mktemp -d "$root/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetch-llama: fetching $LLAMA_NPM_PACKAGE"
(cd "$work" && npm pack --silent "$LLAMA_NPM_PACKAGE" >/dev/null)
tarball=$(ls "$work"/*.tgz)
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$LLAMA_NPM_SHA256" ]; then
  echo "fetch-llama: $LLAMA_NPM_PACKAGE has sha256 $actual, expected $LLAMA_NPM_SHA256" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/llama/gitRelease.bundle
bundle=$work/package/llama/gitRelease.bundle
head=$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" {print $1}')
if [ "$head" != "$LLAMA_COMMIT" ]; then
  echo "fetch-llama: the bundle holds llama.cpp $head, expected $LLAMA_COMMIT" >&2
  exit 1
fi

rm -rf "$root/src" "$root/build" "$root/install"
git clone --quiet --no-checkout "$bundle" "$root/src"
git -C "$root/src" -c advice.detachedHead=false checkout --quiet "$LLAMA_COMMIT"

echo "fetch-llama: building libllama (CPU, Release; a few minutes)"
cmake -S "$root/src" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$root/install" -DCMAKE_INSTALL_RPATH="\$ORIGIN" \
  -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=ON \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_MTMD=OFF >"$work/configure.log" 2>&1 ||
  { tail -n 30 "$work/configure.log" >&2; echo "fetch-llama: configure failed" >&2; exit 1; }
cmake --build "$root/build" --target llama >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; echo "fetch-llama: build failed" >&2; exit 1; }
cmake --install "$root/build" >"$work/install.log" 2>&1 ||
  { tail -n 30 "$work/install.log" >&2; echo "fetch-llama: install failed" >&2; exit 1; }
touch "$root/install/.complete"
echo "fetch-llama: libllama $LLAMA_COMMIT installed in $root/install"
