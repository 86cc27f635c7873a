#!/bin/sh
# Installs unipool's build dependencies and builds everything into build/
# with CMake and Ninja. Idempotent and incremental.
#   Linux (Debian 12): Debian packages only.
#   macOS: Homebrew packages (brew must be installed); the POSIX/macOS
#   platform layer is chosen automatically (platform/CMakeLists.txt).
set -eu
cd "$(dirname "$0")/.."

case "$(uname)" in
Darwin)
  if ! command -v brew >/dev/null; then
    echo "setup: Homebrew is needed on macOS (https://brew.sh)" >&2
    exit 1
  fi
  # googletest provides GTest and GMock; the verbs header comes from the SDK
  # of macOS 26.2+ (librdma is opened at run time).
  for formula in cmake ninja pkg-config abseil rocksdb flatbuffers xxhash cpp-httplib \
      nlohmann-json googletest asio openssl pybind11 llama.cpp; do
    brew list --formula "$formula" >/dev/null 2>&1 || brew install "$formula"
  done
  jobs=$(sysctl -n hw.ncpu)
  ;;
*)
  scripts/apt-ensure.sh setup g++ cmake ninja-build pkg-config libabsl-dev libflatbuffers-dev \
    flatbuffers-compiler librocksdb-dev libgtest-dev libgmock-dev libxxhash-dev libibverbs-dev \
    libcpp-httplib-dev nlohmann-json3-dev libasio-dev libssl-dev liburing-dev \
    python3-dev pybind11-dev
  jobs=$(nproc)
  ;;
esac

# llama.cpp for integrations/llama: Homebrew's on a Mac, else the pinned
# source built once into a cache folder. A build configured before it
# existed is configured again to find it.
if [ "$(uname)" != Darwin ]; then scripts/fetch-llama.sh; fi
if [ ! -f build/build.ninja ] || grep -q '^llama_DIR:PATH=.*NOTFOUND' build/CMakeCache.txt; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
echo "setup: building (ninja, $jobs jobs)"
cmake --build build
