#!/bin/sh
# Installs the SDK from BUILD_DIR into WORK/prefix and builds the consumer
# application against it twice: with CMake (find_package) into
# WORK/cmake/consumer and with pkg-config into WORK/pkg-config-consumer.
# Usage: build-consumers.sh SOURCE_DIR BUILD_DIR WORK
set -eu
source_dir=$1
build_dir=$2
work=$3
consumer=$source_dir/tests/sdk_install/consumer
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build_dir" --prefix "$work/prefix" >"$work/install.log"
# find_package(unipool): nothing named but unipool::client.
cmake -S "$consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake-configure.log"
cmake --build "$work/cmake" >"$work/cmake-build.log"
# pkg-config: the flags unipool.pc gives, and an rpath to the installed library.
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs unipool)
# shellcheck disable=SC2086  # the flags are words
c++ -o "$work/pkg-config-consumer" "$consumer/main.cc" $flags -Wl,-rpath,"$work/prefix/lib"
echo "built against the SDK installed in $work/prefix"
