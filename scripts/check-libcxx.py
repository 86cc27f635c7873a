#!/usr/bin/env python3
"""Compiles every C++ source file of the project with clang++ and libc++
(-fsyntax-only), as Apple's toolchain would, so code that only builds with
GCC's libstdc++ is caught on Linux.

Usage: check-libcxx.py BUILD_DIR   (a CMake build with compile_commands.json)

Each file is checked with the include paths and definitions CMake gives it;
a source file CMake does not build in this configuration (the other
platform's implementation, e.g. platform/posix_*.cc) borrows the flags of a
file in the same folder. Exits 1 naming every file that fails.
"""
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys


def clang_args(command, source):
    """The include/define/std flags of a CMake compile command, for clang."""
    args = shlex.split(command)
    while args and not args[0].startswith("-"):  # the launcher (ccache) and compiler
        args = args[1:]
    out = ["clang++", "-stdlib=libc++", "-fsyntax-only", "-Wno-unknown-warning-option"]
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if arg == "-c" or arg.startswith("-MD") or arg.endswith((".cc", ".cpp")):
            continue
        out.append(arg)
    return out + [source]


def main():
    if shutil.which("clang++") is None or not os.path.isdir("/usr/include/c++/v1") and \
            sys.platform.startswith("linux"):
        print("check-libcxx: skipped: needs clang++ and libc++ (scripts/install-test-deps.sh)")
        return 77
    build = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    by_file = {}
    for e in entries:
        path = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if path.startswith(root + os.sep) and not path.startswith(build):
            by_file[path] = e
    by_folder = {os.path.dirname(p): e for p, e in by_file.items()}

    def nearest_entry(path):
        # A file outside the build (the SDK consumer, built by its own test)
        # takes the flags of the nearest built file below a common folder.
        folder = os.path.dirname(path)
        while folder.startswith(root + os.sep):
            for built, e in by_file.items():
                if built.startswith(folder + os.sep):
                    return e
            folder = os.path.dirname(folder)
        return None

    tracked = subprocess.run(["git", "-C", root, "ls-files", "*.cc"], capture_output=True,
                             text=True, check=True).stdout.split()
    jobs = []
    for rel in tracked:
        path = os.path.join(root, rel)
        entry = (by_file.get(path) or by_folder.get(os.path.dirname(path))
                 or nearest_entry(path))
        if entry is None:
            print(f"check-libcxx: no flags for {rel} (not in any built folder)", file=sys.stderr)
            return 1
        jobs.append((rel, entry["directory"], clang_args(entry["command"], path)))

    def check(job):
        rel, cwd, cmd = job
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        return rel, r.returncode, r.stderr

    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for rel, code, err in pool.map(check, jobs):
            if code != 0:
                failed.append(rel)
                sys.stderr.write(err)
    if failed:
        print("check-libcxx: these files do not compile with clang++ and libc++:", file=sys.stderr)
        print("\n".join(failed), file=sys.stderr)
        return 1
    print(f"check-libcxx: {len(jobs)} files compile with clang++ -stdlib=libc++")
    return 0


if __name__ == "__main__":
    sys.exit(main())
