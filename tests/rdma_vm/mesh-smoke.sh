#!/bin/bash
# mesh-smoke.sh: does each cable of a mesh carry RDMA between the two machines it joins, and
# only between them?
#
#   tests/rdma_vm/mesh-smoke.sh [mesh-run options]
#
# On the host it boots a full mesh of three machines (cables a-b, a-c, b-c) with mesh-run and a
# shared --out directory, and runs itself on each machine. There, all at once:
#   - ibv_rc_pingpong, RC, 300 x 4 KiB, for every pair over the pair's own cable (client on the
#     lower letter): a-b on rxe_ab, a-c on rxe_ac, b-c on rxe_bc, GID index 1;
#   - ib_write_bw -c UC, 200 x 64 KiB, a to b on rxe_ab;
#   - a cable that does not lead there: a's rxe_ab to c's GID (c's address on cable a-c, where c
#     serves on rxe_ac). The connection exchange over TCP works (IP is routed via a-c) but the
#     RDMA connection must fail, and within 30 s;
#   - a pulled cable: a pulls a-b out with mesh-cable; rxe_ab must be PORT_DOWN on a and on b,
#     rxe_ac still PORT_ACTIVE; plugged back in, rxe_ab must be ACTIVE again.
# Servers announce themselves with files in the --out directory; b and c write their verdicts
# there (b.done, c.done) and a, the driver, exits 0 only if every check on every machine passed.
# Exit 77 (skip) when mesh-run does.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

if [[ -z ${UNIPOOL_MESH_MACHINE:-} ]]; then
  # On the host.
  out=$(mktemp -d /tmp/unipool-mesh-smoke.XXXXXX)
  trap 'rm -rf "$out"' EXIT
  self=$here/mesh-smoke.sh
  "$here/mesh-run" --cables a-b,a-c,b-c --out "$out" "$@" -- a: "$self" -- b: "$self" -- c: "$self"
  exit $?
fi

# shellcheck source=vm-common.sh
. "$here/vm-common.sh"
me=$UNIPOOL_MESH_MACHINE
out=${UNIPOOL_MESH_OUT:?mesh-smoke needs mesh-run --out}
gid=$UNIPOOL_MESH_GID_INDEX
pingpong=(ibv_rc_pingpong -g "$gid" -s 4096 -n 300)
declare -A port=([pp_ab]=18516 [pp_ac]=18517 [pp_bc]=18518 [wrong_cable]=18519 [uc_ab]=18600)
fails=0

# serve NAME TOOL ARGS...: starts NAME's server in the background (output in $tmp/NAME.log,
# status in $tmp/NAME.rc) and, once it listens, announces it with $out/NAME.listening.
serve() {
  local name=$1 i
  shift
  (
    timeout -k 5 90 "$@" -p "${port[$name]}" >"$tmp/$name.log" 2>&1
    echo $? >"$tmp/$name.rc"
  ) &
  for ((i = 0; i < 1200; i++)); do
    listening "${port[$name]}" && break
    pause 0.05
  done
  : >"$out/$name.listening"
}

# connect NAME LIMIT SERVER TOOL ARGS...: waits for NAME's server, then runs the client (at most
# LIMIT seconds; output in $tmp/NAME.log, status in $tmp/NAME.rc, seconds in $tmp/NAME.time).
connect() {
  local name=$1 limit=$2 server=$3 i t0
  shift 3
  for ((i = 0; i < 1200; i++)); do
    [[ -e $out/$name.listening ]] && break
    pause 0.05
  done
  t0=$EPOCHREALTIME
  timeout -k 5 "$limit" "$@" -p "${port[$name]}" "$server" >"$tmp/$name.log" 2>&1
  echo $? >"$tmp/$name.rc"
  echo "$t0 $EPOCHREALTIME" | awk '{ printf "%.1f\n", $2 - $1 }' >"$tmp/$name.time"
}

# expect_ok NAME WHAT: NAME's tool (client or server here) must have exited 0.
expect_ok() {
  local rc
  rc=$(cat "$tmp/$1.rc" 2>/dev/null || echo none)
  if [[ $rc == 0 ]]; then
    echo "mesh-smoke: ok: $2: $(grep -h -E 'usec/iter|^ *[0-9]+ +[0-9]+ ' "$tmp/$1.log" | tail -n 1 | xargs)"
  else
    echo "mesh-smoke: FAIL: $2: status $rc"
    sed 's/^/  | /' "$tmp/$1.log"
    fails=$((fails + 1))
  fi
}

case $me in
  a)
    connect pp_ab 90 "$UNIPOOL_MESH_PEER_b" "${pingpong[@]}" -d "$UNIPOOL_MESH_DEVICE_b" &
    connect pp_ac 90 "$UNIPOOL_MESH_PEER_c" "${pingpong[@]}" -d "$UNIPOOL_MESH_DEVICE_c" &
    wait
    expect_ok pp_ab "a-b ibv_rc_pingpong RC 300 x 4 KiB on $UNIPOOL_MESH_DEVICE_b (client)"
    expect_ok pp_ac "a-c ibv_rc_pingpong RC 300 x 4 KiB on $UNIPOOL_MESH_DEVICE_c (client)"
    connect uc_ab 90 "$UNIPOOL_MESH_PEER_b" ib_write_bw -d "$UNIPOOL_MESH_DEVICE_b" -x "$gid" \
      -c UC -s 65536 -n 200 -F
    expect_ok uc_ab "a-b ib_write_bw UC 200 x 64 KiB on $UNIPOOL_MESH_DEVICE_b (client)"

    # a's device on cable a-b, aimed at c's GID on cable a-c.
    connect wrong_cable 30 "$UNIPOOL_MESH_PEER_c" "${pingpong[@]}" -n 5 -d "$UNIPOOL_MESH_DEVICE_b"
    rc=$(<"$tmp/wrong_cable.rc") secs=$(<"$tmp/wrong_cable.time")
    what="a's $UNIPOOL_MESH_DEVICE_b to c's GID ::ffff:$UNIPOOL_MESH_PEER_c (cable a-c)"
    if ((rc != 0 && rc != 124 && rc != 137)) && grep -q 'remote address' "$tmp/wrong_cable.log"; then
      echo "mesh-smoke: ok: $what fails after $secs s (status $rc):" \
        "$(grep -v address "$tmp/wrong_cable.log" | head -n 2 | xargs)"
    else
      echo "mesh-smoke: FAIL: $what: status $rc after $secs s (want a quick failure after the" \
        "connection exchange)"
      sed 's/^/  | /' "$tmp/wrong_cable.log"
      fails=$((fails + 1))
    fi

    # Pull cable a-b out (both ends), and plug it back in.
    if "$here/mesh-cable" ab down && ibv_devinfo -d rxe_ab >"$tmp/down.txt" 2>&1 &&
      ibv_devinfo -d rxe_ac >"$tmp/other.txt" 2>&1 &&
      grep -q 'PORT_DOWN' "$tmp/down.txt" && grep -q 'PORT_ACTIVE' "$tmp/other.txt"; then
      echo "mesh-smoke: ok: cable a-b pulled: rxe_ab PORT_DOWN, rxe_ac still PORT_ACTIVE," \
        "GID 1 $(</sys/class/infiniband/rxe_ab/ports/1/gids/1)"
    else
      echo "mesh-smoke: FAIL: pulling cable a-b"
      cat "$tmp/down.txt" "$tmp/other.txt" 2>/dev/null | grep -E 'hca_id|state'
      fails=$((fails + 1))
    fi
    : >"$out/ab.pulled"
    for ((i = 0; i < 600; i++)); do
      [[ -e $out/b.done ]] && break
      pause 0.05
    done
    if "$here/mesh-cable" ab up; then
      echo "mesh-smoke: ok: cable a-b plugged back in: rxe_ab $(</sys/class/infiniband/rxe_ab/ports/1/state)"
    else
      echo "mesh-smoke: FAIL: plugging cable a-b back in"
      fails=$((fails + 1))
    fi

    # The other machines' verdicts.
    for m in b c; do
      for ((i = 0; i < 1800; i++)); do
        [[ -e $out/$m.done ]] && break
        pause 0.05
      done
      if [[ ! -e $out/$m.done ]]; then
        echo "mesh-smoke: FAIL: no verdict from machine $m"
        fails=$((fails + 1))
      elif [[ $(<"$out/$m.done") != 0 ]]; then
        echo "mesh-smoke: FAIL: machine $m reported $(<"$out/$m.done") failed check(s)"
        fails=$((fails + 1))
      fi
    done
    if ((fails)); then
      echo "mesh-smoke: FAIL: $fails check(s) failed"
      exit 1
    fi
    echo "mesh-smoke: ok: every pair over its own cable, UC on a-b, no path over the wrong cable," \
      "and a pulled cable"
    ;;
  b)
    serve pp_ab "${pingpong[@]}" -d "$UNIPOOL_MESH_DEVICE_a"
    serve uc_ab ib_write_bw -d "$UNIPOOL_MESH_DEVICE_a" -x "$gid" -c UC -s 65536 -n 200 -F
    connect pp_bc 90 "$UNIPOOL_MESH_PEER_c" "${pingpong[@]}" -d "$UNIPOOL_MESH_DEVICE_c"
    wait
    expect_ok pp_ab "a-b ibv_rc_pingpong on $UNIPOOL_MESH_DEVICE_a (server)"
    expect_ok uc_ab "a-b ib_write_bw UC on $UNIPOOL_MESH_DEVICE_a (server)"
    expect_ok pp_bc "b-c ibv_rc_pingpong RC 300 x 4 KiB on $UNIPOOL_MESH_DEVICE_c (client)"
    # a pulls cable a-b: this end must lose its port too.
    for ((i = 0; i < 1200; i++)); do
      [[ -e $out/ab.pulled ]] && break
      pause 0.05
    done
    state=$(</sys/class/infiniband/rxe_ab/ports/1/state)
    if [[ -e $out/ab.pulled && $state == *DOWN ]]; then
      echo "mesh-smoke: ok: cable a-b pulled: this end's rxe_ab is $state too"
    else
      echo "mesh-smoke: FAIL: cable a-b pulled: this end's rxe_ab is $state"
      fails=$((fails + 1))
    fi
    echo "$fails" >"$out/b.done"
    ;;
  c)
    serve pp_ac "${pingpong[@]}" -d "$UNIPOOL_MESH_DEVICE_a"
    serve pp_bc "${pingpong[@]}" -d "$UNIPOOL_MESH_DEVICE_b"
    # The wrong-cable case's server, on the right device (rxe_ac): a's QP on rxe_ab must not
    # reach it. It waits until the mesh ends.
    serve wrong_cable "${pingpong[@]}" -n 5 -d "$UNIPOOL_MESH_DEVICE_a"
    while [[ ! -e $tmp/pp_ac.rc || ! -e $tmp/pp_bc.rc ]]; do
      pause 0.1
    done
    expect_ok pp_ac "a-c ibv_rc_pingpong on $UNIPOOL_MESH_DEVICE_a (server)"
    expect_ok pp_bc "b-c ibv_rc_pingpong on $UNIPOOL_MESH_DEVICE_b (server)"
    echo "$fails" >"$out/c.done"
    ;;
  *)
    echo "mesh-smoke: machine $me has no part in this test"
    ;;
esac
exit 0
