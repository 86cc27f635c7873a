# shellcheck shell=bash
# vm-host.sh: the host side shared by vm-run (one VM) and mesh-run (several VMs joined by
# cables). Sourced, never run. (vm-common.sh is the other shared file: it is sourced by the
# scripts that run INSIDE the VM, and makes a scratch directory as soon as it is sourced.)
#
# The caller sets vm_prog (its name, for messages) and then calls, in this order:
#   vm_prepare      checks that a VM can run here (else exit 77), picks the kernel, builds or
#                   reuses the cached initramfs; sets qemu, kver, kernel, cache, initrd
#   vm_lock         takes the machine-wide VM lock on fd 9 (waits for a running VM)
#   vm_filter_console NONCE PREFIX   (per VM) passes the command's console output through
# and uses now_ms / vm_ms for timings, vm_show_early for a VM that never started its command.
# Exits: vm_skip 77 (the VM cannot run on this machine), vm_die 125 (harness failure).

vm_skip() {
  echo "$vm_prog: SKIP: $*" >&2
  exit 77
}
vm_die() {
  echo "$vm_prog: $*" >&2
  exit 125
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# vm_ms MILLISECONDS: "12.3" (seconds, one decimal).
vm_ms() { printf '%d.%01d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

vm_prepare() {
  local here tool k m
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

  # --- Can the VM run here at all? ---------------------------------------------------------------
  (($(id -u) == 0)) || vm_skip "must run as root (qemu shares / over 9p with security_model=none)"
  qemu=$(command -v qemu-system-x86_64) ||
    vm_skip "qemu-system-x86_64 not installed (run scripts/install-rdma-vm-deps.sh)"
  for tool in cpio gzip modprobe sha256sum flock timeout; do
    command -v "$tool" >/dev/null || vm_skip "$tool not installed (run scripts/install-rdma-vm-deps.sh)"
  done
  local busybox=/bin/busybox
  [[ -x $busybox && $(ldd "$busybox" 2>&1) == *'not a dynamic executable'* ]] ||
    vm_skip "static busybox not found at $busybox (install busybox-static)"
  command -v ibv_devinfo >/dev/null && command -v rdma >/dev/null ||
    vm_skip "rdma-core tools not installed (run scripts/install-rdma-vm-deps.sh)"

  # Newest kernel in /boot that has its modules installed.
  kver=
  for k in $(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -rV); do
    if [[ -d /lib/modules/$k && -r /boot/vmlinuz-$k ]]; then
      kver=$k
      break
    fi
  done
  [[ -n $kver ]] || vm_skip "no /boot/vmlinuz-* with matching /lib/modules (install linux-image-amd64)"
  kernel=/boot/vmlinuz-$kver

  # Module load order: crc32 first (rdma_rxe needs the crc32 crypto algorithm), then the
  # dependencies of each module, each file once. virtio_net is for mesh-run's cables (vm-run's VM
  # has no NIC; loading it there costs nothing), so both share one initramfs.
  local modules
  modules=$(
    for m in crc32_generic virtio_pci virtio_net 9pnet_virtio 9p overlay veth rdma_rxe rdma_ucm; do
      modprobe -S "$kver" --show-depends "$m" 2>/dev/null || echo "missing $m"
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 } $1 == "missing" { print }'
  )
  if grep -q '^missing' <<<"$modules"; then
    vm_skip "kernel $kver lacks module(s): $(grep '^missing' <<<"$modules" | cut -d' ' -f2 | xargs)"
  fi

  # --- The initramfs, cached per kernel ----------------------------------------------------------
  cache=${XDG_CACHE_HOME:-/tmp}/unipool-rdma-vm
  mkdir -p "$cache"
  local key
  key=$({
    echo "$kver"
    cat "$here/vm-init"
    sha256sum "$busybox"
    xargs stat -c '%n %s %Y' <<<"$modules"
  } | sha256sum | cut -c1-16)
  initrd=$cache/initramfs-$kver-$key.cpio.gz
  if [[ ! -s $initrd ]]; then
    vm_build_initrd "$here" "$busybox" "$modules" || vm_die "cannot build the initramfs in $cache"
  fi

  # Booting the uncompressed vmlinux through its PVH entry skips SeaBIOS's bzImage path and the
  # xz decompression, which under TCG takes ~4.5 s of every run. Fall back to the bzImage when the
  # kernel lacks PVH or the payload cannot be extracted, or when UNIPOOL_VM_BZIMAGE=1.
  if [[ ${UNIPOOL_VM_BZIMAGE:-0} != 1 ]] && grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
    local vmlinux
    vmlinux=$cache/vmlinux-$kver-$(stat -c '%s-%Y' "$kernel")
    if [[ -s $vmlinux ]] || vm_extract_vmlinux "$vmlinux"; then
      kernel=$vmlinux
    fi
  fi
}

# vm_build_initrd HERE BUSYBOX MODULES: writes $initrd (busybox, vm-init as /init, the modules
# decompressed and numbered in load order). Built in a stage directory and renamed into place,
# so a concurrent reader never sees half a file.
vm_build_initrd() {
  local here=$1 busybox=$2 modules=$3 stage
  stage=$(mktemp -d "$cache/stage.XXXXXX")
  mkdir -p "$stage"/{bin,dev,modules}
  cp "$busybox" "$stage/bin/busybox"
  cp "$here/vm-init" "$stage/init"
  chmod 755 "$stage/init"
  mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
  local i=0 ko base
  while read -r ko; do
    base=$(printf '%02d-%s' "$i" "$(basename "$ko")")
    # busybox insmod loads plain ELF only; decompress here.
    case $ko in
      *.ko.xz) xz -dc "$ko" >"$stage/modules/${base%.xz}"; base=${base%.xz} ;;
      *.ko.zst) zstd -qdc "$ko" >"$stage/modules/${base%.zst}"; base=${base%.zst} ;;
      *.ko.gz) gzip -dc "$ko" >"$stage/modules/${base%.gz}"; base=${base%.gz} ;;
      *) cp "$ko" "$stage/modules/$base" ;;
    esac
    echo "$base" >>"$stage/modules/order"
    i=$((i + 1))
  done <<<"$modules"
  (cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$stage.cpio.gz"
  mv "$stage.cpio.gz" "$initrd"
  rm -rf "$stage"
}

# vm_extract_vmlinux OUT: the ELF kernel inside $kernel's compressed payload, written to OUT.
vm_extract_vmlinux() {
  # Magic bytes of each payload format, and the tool that decompresses it (xz is Debian's).
  local -a magics=($'\xfd7zXZ' $'\x28\xb5\x2f\xfd' $'\x1f\x8b\x08') tools=(xz zstd gzip)
  local i off
  for i in "${!magics[@]}"; do
    command -v "${tools[i]}" >/dev/null || continue
    off=$(LC_ALL=C grep -abo -m1 "${magics[i]}" "$kernel" | head -n1 | cut -d: -f1)
    [[ -n $off ]] || continue
    # Trailing bytes after the payload make the tool complain; the output is still whole.
    tail -c +$((off + 1)) "$kernel" | "${tools[i]}" -qdc >"$1.tmp" 2>/dev/null || true
    if [[ $(head -c4 "$1.tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
      mv "$1.tmp" "$1"
      return 0
    fi
  done
  rm -f "$1.tmp"
  return 1
}

# vm_lock: one VM (or one mesh of VMs) at a time on the machine: the lock is held on fd 9 until
# the caller exits. Sets t_lock (when we asked) and t_boot (when we got it).
vm_lock() {
  t_lock=$(now_ms)
  exec 9>"$cache/vm.lock"
  if ! flock -n 9; then
    echo "$vm_prog: waiting for another VM on this machine to finish" >&2
    flock 9
  fi
  t_boot=$(now_ms)
}

# Kernel command line shared by every VM: loglevel=1 keeps kernel messages off the console.
# tsc=reliable makes the guest use the TSC (qemu passes the host's constant, nonstop TSC through)
# instead of the HPET, whose every read is an emulated MMIO access: clock_gettime drops from
# ~3.6 us to ~0.16 us, and perftest's clock calibration stops failing under load.
# no_timer_check skips the boot-time check that the IO-APIC timer ticks: under TCG on a busy
# host it can miss its window and panic ("IO-APIC + timer doesn't work!"), seen on a mesh boot
# at load 6-7.
vm_cmdline="console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init tsc=reliable no_timer_check"

# vm_filter_console NONCE PREFIX: reads one VM's console on stdin until qemu closes it. Drops
# firmware and boot noise before the start marker (kept in early[] in case the VM fails before
# it), passes the command's output through to stdout with PREFIX before each line, and takes the
# status from the exit marker. Sets status (empty if none came), started (0/1), and the times
# (now_ms) t_ready (ready marker, mesh only), t_cmd (start marker) and t_done (exit marker).
vm_filter_console() {
  local nonce=$1 prefix=$2 line
  status= started=0 early=() t_ready= t_cmd= t_done=
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    if [[ -n $status ]]; then
      continue # only the kernel's power-down message follows
    elif ((started == 0)); then
      if [[ $line == *UNIPOOL_VM_START_$nonce ]]; then
        started=1
        t_cmd=$(now_ms)
      elif [[ $line == *UNIPOOL_VM_READY_$nonce ]]; then
        t_ready=$(now_ms)
      else
        early+=("$line")
        ((${#early[@]} <= 200)) || early=("${early[@]:100}")
      fi
    elif [[ $line =~ ^(.*)UNIPOOL_VM_EXIT_${nonce}=([0-9]+)$ ]]; then
      [[ -n ${BASH_REMATCH[1]} ]] && printf '%s%s\n' "$prefix" "${BASH_REMATCH[1]}"
      status=${BASH_REMATCH[2]}
      t_done=$(now_ms)
    else
      printf '%s%s\n' "$prefix" "$line"
    fi
  done
}

# vm_show_early [WHO]: the console lines from before the command started (firmware, kernel and
# vm-init messages), if it never started; on stderr.
vm_show_early() {
  ((started == 0 && ${#early[@]})) || return 0
  echo "$vm_prog: console${1:+ of $1} before the command started:" >&2
  printf '%s\n' "${early[@]}" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | grep -v '^$' >&2 || true
}
