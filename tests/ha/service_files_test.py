#!/usr/bin/python3
"""The service files as installed: `cmake --install --component services`
into a temporary prefix; every unit's and plist's program is installed
there, and every flag its command line gives is one the program's --help
lists.
Usage: service_files_test.py BUILD_DIR"""
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import tempfile


def check_flags(argv, what):
    """The program is installed and its --help lists every flag argv gives."""
    program = argv[0]
    assert os.access(program, os.X_OK), f"{what}: {program} is not an installed program"
    done = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{what}: {program} --help exited {done.returncode}"
    listed = done.stdout + done.stderr
    for arg in argv[1:]:
        assert arg.startswith("--"), f"{what}: '{arg}' is not a --flag=value"
        name = arg[2:].split("=")[0].replace("-", "_")
        assert f"--{name} " in listed, f"{what}: {program} has no flag --{name}"


def unit_command(path):
    """ExecStart with $VAR expanded from the unit's own Environment= lines."""
    env, exec_start = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith("Environment="):
            name, _, value = shlex.split(line[len("Environment="):])[0].partition("=")
            env[name] = value
        elif line.startswith("ExecStart="):
            exec_start = line[len("ExecStart="):]
    assert exec_start, f"{path}: no ExecStart"
    words = []
    for word in exec_start.split():
        words += env[word[1:]].split() if word.startswith("$") else [word]
    return words


def main():
    build = sys.argv[1]
    prefix = tempfile.mkdtemp(prefix="unipool-services-")
    try:
        subprocess.run(["cmake", "--install", build, "--component", "services", "--prefix", prefix],
                       check=True, capture_output=True)
        units = os.path.join(prefix, "lib/systemd/system")
        for unit in ("unipool-directory.service", "unipool-node.service"):
            path = os.path.join(units, unit)
            text = open(path).read()
            for needed in ("Restart=always", "WantedBy=multi-user.target", prefix + "/bin/"):
                assert needed in text, f"{unit}: no {needed}"
            check_flags(unit_command(path), unit)
        plists = os.path.join(prefix, "share/unipool/launchd")
        for name in ("org.unipool.directory.plist", "org.unipool.node.plist"):
            with open(os.path.join(plists, name), "rb") as f:
                plist = plistlib.load(f)
            assert plist["Label"] + ".plist" == name, name
            assert plist["RunAtLoad"] is True and plist["KeepAlive"] is True, name
            args = plist["ProgramArguments"]
            assert args[0].startswith(prefix + "/bin/"), name
            check_flags(args, name)
        print("service files: 2 units and 2 plists installed, every flag known")
    finally:
        shutil.rmtree(prefix)


if __name__ == "__main__":
    main()
