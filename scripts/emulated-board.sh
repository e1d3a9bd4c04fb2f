#!/usr/bin/env bash
# emulated-board.sh: an emulated aarch64 "Raspberry Pi" reachable over real SSH on this machine.
#
# A Debian bookworm arm64 rootfs runs under qemu-user (binfmt_misc) in a chroot; sshd inside the chroot
# listens on 127.0.0.1, so edgeprune's SSH device code, SFTP uploads and the LiteRT runtime all run the same
# way they do on a Pi 4, only 130-500x slower. See docs/emulated-board.md.
#
#   scripts/emulated-board.sh up       build (first time) or restore (from cache) the board and start sshd
#   scripts/emulated-board.sh down     stop sshd, unmount, remove the extracted rootfs (keeps cache and keys)
#   scripts/emulated-board.sh status   exit 0 and print host/port when the board answers over SSH
#   scripts/emulated-board.sh env      print NAME=value lines for tests: set -a; eval "$(... env)"; set +a
#
# Environment:
#   EMULATED_BOARD_PORT     sshd port on 127.0.0.1 (default 2299)
#   EMULATED_BOARD_QEMU_CPU CPU model qemu emulates (default cortex-a72, as on a Pi 4; "max" is qemu's default)
#   EMULATED_BOARD_MIRROR   Debian mirror for debootstrap (default: the one apt on this host uses)
#   EDGEPRUNE_BOARD_CACHE   rootfs tarball cache (default $HOME/.cache/edgeprune/emulated-board)
#   EDGEPRUNE_BOARD_STATE   runtime state: rootfs, keys, pid file (default /tmp/edgeprune-emulated-board)
set -euo pipefail

SCRIPT_PATH="$(readlink -f "${BASH_SOURCE[0]}")"
readonly SCRIPT_PATH
readonly PORT="${EMULATED_BOARD_PORT:-2299}"
# qemu's default CPU ("max") advertises SVE, dotprod and fp16 that a Pi 4 lacks; XNNPACK then picks kernels
# that qemu emulates 5-8x slower still, which distorts every ratio. A Cortex-A72 matches the Pi 4.
readonly QEMU_CPU_MODEL="${EMULATED_BOARD_QEMU_CPU:-cortex-a72}"
readonly CACHE_DIR="${EDGEPRUNE_BOARD_CACHE:-${HOME:-/root}/.cache/edgeprune/emulated-board}"
readonly STATE_DIR="${EDGEPRUNE_BOARD_STATE:-/tmp/edgeprune-emulated-board}"
readonly ROOTFS="${STATE_DIR}/rootfs"
readonly BOARD_HOST="127.0.0.1"
readonly BOARD_USER="root"
readonly USER_KEY="${STATE_DIR}/id_ed25519"
readonly HOST_KEY="${STATE_DIR}/ssh_host_ed25519_key"
readonly KNOWN_HOSTS="${STATE_DIR}/known_hosts"
readonly SSH_CONFIG="${STATE_DIR}/ssh_config"
readonly PID_FILE="${STATE_DIR}/sshd.pid"
readonly PORT_FILE="${STATE_DIR}/port"
readonly RECIPE_FILE="${STATE_DIR}/rootfs.recipe"
readonly CPUINFO_FILE="${STATE_DIR}/cpuinfo"
readonly LOCK_FILE="${STATE_DIR}.lock"
readonly PIP_LEFT_OUT="${STATE_DIR}/pip-sources-left-out"
# Paths inside the rootfs.
readonly SSHD_CONFIG_IN="/etc/ssh/edgeprune_sshd_config"
readonly HOST_KEY_IN="/etc/ssh/edgeprune_host_ed25519_key"
readonly SSHD_PID_IN="/run/edgeprune-sshd.pid"
readonly CHROOT_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
readonly HOST_APT_PACKAGES=(debootstrap qemu-user-static binfmt-support zstd openssh-client debian-archive-keyring)

# Cold builds retry the whole provisioning this often before giving up (see provision_with_retries).
readonly PROVISION_ATTEMPTS=3

# Set while something half-made exists; the EXIT trap removes it when the script fails.
PARTIAL_ROOTFS=""
PARTIAL_TARBALL=""
RUNTIME_STARTED=0

log() { printf 'emulated-board: %s\n' "$*" >&2; }
die() { printf 'emulated-board: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: scripts/emulated-board.sh up|down|status|env
  up      build or restore the emulated aarch64 board; sshd on 127.0.0.1 port EMULATED_BOARD_PORT (2299)
  down    stop it, unmount everything, remove the extracted rootfs (the cache stays)
  status  exit 0 and print host/port when the board answers over SSH
  env     print EDGEPRUNE_BOARD_* assignments: set -a; eval "$(scripts/emulated-board.sh env)"; set +a
EOF
}

# --------------------------------------------------------------------------------------------------------------
# >>> provisioning recipe: everything up to the closing marker is hashed into the cache key, so editing
# >>> it invalidates the cached rootfs tarball. Keep runtime-only code outside this section.
readonly RECIPE_VERSION=1
readonly SUITE="bookworm"
readonly DEB_ARCH="arm64"
readonly DEB_INCLUDE="python3,python3-venv,openssh-server,ca-certificates"
readonly VENV="/opt/edgeprune-venv"
readonly PIP_PACKAGES=(numpy ai-edge-litert)
# A second venv as many boards in the field have it: the last tflite-runtime, with the numpy 1.x it was built for.
readonly TFLITE_VENV="/opt/edgeprune-tflite-venv"
readonly TFLITE_PIP_PACKAGES=("numpy<2" "tflite-runtime==2.14.0")

# provision_rootfs ROOTFS MIRROR LOGFILE: a fresh minbase bookworm arm64 with the LiteRT venv.
provision_rootfs() {
    local rootfs="$1" mirror="$2" logfile="$3"
    local keyring=()
    if [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
        keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    fi
    log "debootstrap ${SUITE} ${DEB_ARCH} from ${mirror} (3-5 minutes; log: ${logfile})"
    if ! debootstrap --arch="${DEB_ARCH}" --variant=minbase --include="${DEB_INCLUDE}" "${keyring[@]}" \
            "${SUITE}" "${rootfs}" "${mirror}" >"${logfile}" 2>&1; then
        tail -n 15 "${logfile}" >&2 || true
        die "debootstrap failed (full log: ${logfile}); check that ${mirror} is reachable and that binfmt qemu-aarch64 works"
    fi
    # No service may start while packages are installed in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"${rootfs}/usr/sbin/policy-rc.d"
    chmod 0755 "${rootfs}/usr/sbin/policy-rc.d"
    copy_host_config "${rootfs}"

    log "creating ${VENV} and pip-installing ${PIP_PACKAGES[*]} inside the rootfs (about a minute)"
    mount_provisioning "${rootfs}"
    in_chroot "${rootfs}" python3 -m venv "${VENV}" >>"${logfile}" 2>&1 \
        || die "python3 -m venv failed inside the rootfs (log: ${logfile})"
    write_venv_pip_conf "${rootfs}"
    if ! in_chroot "${rootfs}" "${VENV}/bin/pip" install --no-cache-dir "${PIP_PACKAGES[@]}" >>"${logfile}" 2>&1; then
        tail -n 15 "${logfile}" >&2 || true
        die "pip install ${PIP_PACKAGES[*]} failed inside the rootfs (log: ${logfile}); check the pip index settings copied from this host"
    fi
    in_chroot "${rootfs}" "${VENV}/bin/python" -c 'import numpy, ai_edge_litert.interpreter' >>"${logfile}" 2>&1 \
        || die "numpy/ai_edge_litert do not import inside the rootfs (log: ${logfile})"

    log "creating ${TFLITE_VENV} and pip-installing ${TFLITE_PIP_PACKAGES[*]} inside the rootfs"
    in_chroot "${rootfs}" python3 -m venv "${TFLITE_VENV}" >>"${logfile}" 2>&1 \
        || die "python3 -m venv ${TFLITE_VENV} failed inside the rootfs (log: ${logfile})"
    write_venv_pip_conf "${rootfs}"
    if ! in_chroot "${rootfs}" "${TFLITE_VENV}/bin/pip" install --no-cache-dir "${TFLITE_PIP_PACKAGES[@]}" \
            >>"${logfile}" 2>&1; then
        tail -n 15 "${logfile}" >&2 || true
        die "pip install ${TFLITE_PIP_PACKAGES[*]} failed inside the rootfs (log: ${logfile})"
    fi
    in_chroot "${rootfs}" "${TFLITE_VENV}/bin/python" -c 'import numpy, tflite_runtime.interpreter' \
        >>"${logfile}" 2>&1 || die "numpy/tflite_runtime do not import inside the rootfs (log: ${logfile})"
    unmount_under "${rootfs}"

    # Strip what is per-machine or only a download cache, so the tarball holds no runtime state.
    in_chroot "${rootfs}" apt-get clean >>"${logfile}" 2>&1 || true
    rm -rf "${rootfs}/var/lib/apt/lists/"* "${rootfs}/root/.cache" "${rootfs}/tmp/"*
    rm -f "${rootfs}/etc/ssh/ssh_host_"*
}
# <<< provisioning recipe
# --------------------------------------------------------------------------------------------------------------

recipe_hash() {
    { printf 'suite=%s arch=%s\n' "${SUITE}" "${DEB_ARCH}"
      sed -n '/^# >>> provisioning recipe/,/^# <<< provisioning recipe/p' "${SCRIPT_PATH}"; } \
        | sha256sum | cut -c1-12
}

cache_tarball() { printf '%s/rootfs-%s-%s-v%s-%s.tar.zst' "${CACHE_DIR}" "${SUITE}" "${DEB_ARCH}" "${RECIPE_VERSION}" "$(recipe_hash)"; }

in_chroot() {
    local rootfs="$1"; shift
    chroot "${rootfs}" /usr/bin/env -i HOME=/root PATH="${CHROOT_PATH}" LANG=C.UTF-8 QEMU_CPU="${QEMU_CPU_MODEL}" "$@"
}

# ---------------------------------------------------------------------------------------------- host checks
require_root() {
    [[ "${EUID}" -eq 0 ]] || die "this needs root (chroot, mount, binfmt): run it with sudo"
}

check_paths() {
    local p
    for p in "${STATE_DIR}" "${CACHE_DIR}"; do
        [[ "${p}" == /* ]] || die "${p} must be an absolute path (EDGEPRUNE_BOARD_STATE / EDGEPRUNE_BOARD_CACHE)"
        [[ "${p}" != *[[:space:]]* ]] || die "'${p}' contains whitespace; choose another EDGEPRUNE_BOARD_STATE / EDGEPRUNE_BOARD_CACHE"
    done
    [[ "${STATE_DIR}" != "/" ]] || die "EDGEPRUNE_BOARD_STATE must not be /"
    if [[ ! "${PORT}" =~ ^[0-9]{1,5}$ ]] || (( 10#${PORT} < 1 || 10#${PORT} > 65535 )); then
        die "EMULATED_BOARD_PORT='${PORT}' is not a TCP port number (1-65535)"
    fi
}

ensure_host_tools() {
    local missing=() pkg
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v zstd >/dev/null || missing+=(zstd)
    if ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then missing+=(openssh-client); fi
    [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
    if [[ "$(uname -m)" != "aarch64" ]]; then
        command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
        command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    fi
    (( ${#missing[@]} == 0 )) && return 0
    command -v apt-get >/dev/null \
        || die "missing host packages (${missing[*]}) and no apt-get: install ${HOST_APT_PACKAGES[*]} yourself"
    log "installing host packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
        || die "apt-get update failed; check /etc/apt/sources.list* and the network"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
    for pkg in "${missing[@]}"; do log "installed ${pkg}"; done
}

enable_binfmt() {
    [[ "$(uname -m)" == "aarch64" ]] && return 0
    local dir=/proc/sys/fs/binfmt_misc entry=/proc/sys/fs/binfmt_misc/qemu-aarch64 cpus
    if [[ ! -e "${dir}/register" ]]; then
        log "mounting binfmt_misc on ${dir}"
        mount -t binfmt_misc binfmt_misc "${dir}" \
            || die "cannot mount binfmt_misc; this kernel or container cannot run foreign binaries (try a VM)"
    fi
    if [[ ! -e "${entry}" ]] || ! grep -qx enabled "${entry}"; then
        log "enabling qemu-aarch64 in binfmt_misc"
        update-binfmts --enable qemu-aarch64 >&2 \
            || die "update-binfmts --enable qemu-aarch64 failed; reinstall qemu-user-static and binfmt-support"
    fi
    grep -qx enabled "${entry}" || die "qemu-aarch64 is not enabled in ${entry}"
    grep -q '^flags:.*F' "${entry}" \
        || die "qemu-aarch64 is registered without the F flag (${entry}); re-register it with Debian's qemu-user-static"
    cpus="$(qemu-aarch64-static -cpu help || true)"  # it lists the models, then exits 1
    awk 'NR > 1 { print $1 }' <<<"${cpus}" | grep -qx -- "${QEMU_CPU_MODEL}" \
        || die "qemu-aarch64 knows no CPU '${QEMU_CPU_MODEL}' (EMULATED_BOARD_QEMU_CPU); see: qemu-aarch64-static -cpu help"
}

# One Debian mirror (main archive, not -security/-updates) from the host's apt configuration.
debian_mirror() {
    local f uri=""
    if [[ -n "${EMULATED_BOARD_MIRROR:-}" ]]; then printf '%s\n' "${EMULATED_BOARD_MIRROR}"; return; fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "${f}" ]] || continue
        uri="$(awk 'BEGIN { RS = ""; FS = "\n" }
            {   types = ""; uris = ""; suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^[ \t]*#/) continue
                    if (sub(/^[Tt]ypes:[ \t]*/, "", line)) types = line
                    else if (sub(/^URIs:[ \t]*/, "", line)) uris = line
                    else if (sub(/^[Ss]uites:[ \t]*/, "", line)) suites = line
                    else if (sub(/^[Ee]nabled:[ \t]*/, "", line)) enabled = line
                }
                if (types !~ /(^|[ \t])deb([ \t]|$)/ || enabled ~ /^[Nn]o/) next
                n = split(suites, s, /[ \t]+/)
                for (j = 1; j <= n; j++) if (s[j] != "" && s[j] !~ /-/) {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "${f}")"
        [[ -n "${uri}" ]] && break
    done
    if [[ -z "${uri}" ]]; then
        uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | sed -E 's/\[[^]]*\]//' \
            | awk '$1 == "deb" && $3 !~ /-/ { print $2; exit }')" || true
    fi
    if [[ ! "${uri}" =~ ^(https?|file):// ]]; then
        log "no usable Debian mirror in /etc/apt/sources.list*; using http://deb.debian.org/debian (set EMULATED_BOARD_MIRROR to override)"
        uri="http://deb.debian.org/debian"
    fi
    printf '%s\n' "${uri%/}"
}

# ------------------------------------------------------------------------------------ host config into rootfs
# rootfs_dest ROOTFS PATH: PATH inside the rootfs, its directory created; refuses a path that a symlink in the
# rootfs would lead back out to the host.
rootfs_dest() {
    local rootfs="$1" path="$2" dest_dir
    dest_dir="$(realpath -m "$(dirname "${rootfs}${path}")")"
    [[ "${dest_dir}/" == "$(realpath -m "${rootfs}")/"* ]] \
        || die "refusing to write ${rootfs}${path}: it resolves to ${dest_dir}, outside the rootfs"
    mkdir -p "${dest_dir}"
    printf '%s/%s\n' "${dest_dir}" "$(basename "${path}")"
}

# copy_into_rootfs ROOTFS HOSTFILE: the same absolute path inside; a missing or relative HOSTFILE is skipped.
copy_into_rootfs() {
    local rootfs="$1" src="$2" dest
    [[ "${src}" == /* && -f "${src}" ]] || return 0
    dest="$(rootfs_dest "${rootfs}" "${src}")"
    rm -f "${dest}"  # never write through a symlink that is already there
    cp -L "${src}" "${dest}"
}

is_pip_source_key() { [[ "$1" =~ ^(index-url|extra-index-url|find-links)$ ]]; }
is_pip_file_key() { [[ "$1" =~ ^(cert|client-cert|constraint|build-constraint|requirement)$ ]]; }

# Local sources (a path or file:// URL) that do not exist inside the rootfs only make pip print warnings there.
filter_pip_sources() {
    local rootfs="$1" tok path kept=()
    shift
    for tok in "$@"; do
        path="${tok#file://}"
        if [[ "${path}" == /* && ! -e "${rootfs}${path}" ]]; then
            printf '%s\n' "${tok}" >>"${PIP_LEFT_OUT}"
            continue
        fi
        kept+=("${tok}")
    done
    printf '%s' "${kept[*]-}"
}

# sanitize_pip_conf ROOTFS < host pip.conf > rootfs pip.conf: drops local sources missing in the rootfs and
# copies the files the config names (cert, constraint) to the same paths inside.
sanitize_pip_conf() {
    local rootfs="$1" line key="" name="" value="" pending=0 kept
    local tokens=() more=()
    while IFS= read -r line || [[ -n "${line}" ]]; do
        if (( pending )) && [[ "${line}" =~ ^[[:space:]]+[^[:space:]] ]]; then
            read -r -a more <<<"${line}"; tokens+=("${more[@]}"); continue
        fi
        if (( pending )); then
            kept="$(filter_pip_sources "${rootfs}" "${tokens[@]+"${tokens[@]}"}")"
            if [[ -n "${kept}" ]]; then printf '%s = %s\n' "${name}" "${kept}"; fi
            pending=0; tokens=()
        fi
        if [[ "${line}" =~ ^([A-Za-z0-9_-]+)[[:space:]]*[=:][[:space:]]*(.*)$ ]]; then
            name="${BASH_REMATCH[1]}"; key="${name//_/-}"; value="${BASH_REMATCH[2]}"
            if is_pip_source_key "${key}"; then
                pending=1; read -r -a tokens <<<"${value}"; continue
            fi
            if is_pip_file_key "${key}"; then copy_into_rootfs "${rootfs}" "${value}"; fi
        fi
        printf '%s\n' "${line}"
    done
    if (( pending )); then
        kept="$(filter_pip_sources "${rootfs}" "${tokens[@]+"${tokens[@]}"}")"
        if [[ -n "${kept}" ]]; then printf '%s = %s\n' "${name}" "${kept}"; fi
    fi
}

# The CA bundles pip and Python may use on this host.
host_ca_bundles() {
    printf '%s\n' /etc/ssl/certs/ca-certificates.crt "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}" \
        | awk 'NF && !seen[$0]++'
}

# Host pip settings given as PIP_* environment variables become the venv's site pip.conf, which pip reads
# after the global and user files, the way environment variables override files on the host.
write_venv_pip_conf() {
    local rootfs="$1" var name key value lines=() values=() venv
    while IFS='=' read -r var value; do
        [[ "${var}" == PIP_CONFIG_FILE ]] && continue
        name="${var#PIP_}"; key="${name,,}"; key="${key//_/-}"
        if is_pip_source_key "${key}"; then
            read -r -a values <<<"${value}"
            value="$(filter_pip_sources "${rootfs}" "${values[@]+"${values[@]}"}")"
            [[ -n "${value}" ]] || continue
        fi
        if is_pip_file_key "${key}"; then copy_into_rootfs "${rootfs}" "${value}"; fi
        lines+=("${key} = ${value}")
    done < <(env | grep -E '^PIP_[A-Z0-9_]+=' || true)
    if [[ -z "${PIP_PROXY:-}" && -n "${https_proxy:-${HTTPS_PROXY:-}}" ]]; then
        lines+=("proxy = ${https_proxy:-${HTTPS_PROXY:-}}")
    fi
    for venv in "${VENV}" "${TFLITE_VENV}"; do
        [[ -d "${rootfs}${venv}" ]] || continue
        {
            printf '# Written by scripts/emulated-board.sh from the PIP_* environment of the host.\n[global]\n'
            if (( ${#lines[@]} )); then printf '%s\n' "${lines[@]}"; fi
        } >"$(rootfs_dest "${rootfs}" "${venv}/pip.conf")"
    done
}

# copy_host_config ROOTFS: name resolution, CA bundle and pip settings, so pip inside reaches the registry
# the way it does on the host. Refreshed on every up, since the cached rootfs may be older than the host's.
copy_host_config() {
    local rootfs="$1" src dest home="${HOME:-/root}" bundle left_out
    : >"${PIP_LEFT_OUT}"
    copy_into_rootfs "${rootfs}" /etc/hosts
    copy_into_rootfs "${rootfs}" /etc/resolv.conf
    while IFS= read -r bundle; do copy_into_rootfs "${rootfs}" "${bundle}"; done < <(host_ca_bundles)

    if [[ -d /etc/xdg/pip ]]; then
        for src in /etc/xdg/pip/*; do [[ "${src}" == */pip.conf ]] || copy_into_rootfs "${rootfs}" "${src}"; done
    fi
    for dest in /etc/pip.conf /etc/xdg/pip/pip.conf /root/.config/pip/pip.conf /root/.pip/pip.conf; do
        rm -f "$(rootfs_dest "${rootfs}" "${dest}")"
    done
    for src in /etc/pip.conf /etc/xdg/pip/pip.conf "${home}/.config/pip/pip.conf" "${home}/.pip/pip.conf" \
            "${PIP_CONFIG_FILE:-}"; do
        [[ "${src}" == /* && -f "${src}" ]] || continue
        case "${src}" in
            "${home}/"*) dest="/root/${src#"${home}/"}" ;;  # the board user is root
            *) dest="${src}" ;;
        esac
        dest="$(rootfs_dest "${rootfs}" "${dest}")"
        rm -f "${dest}"
        sanitize_pip_conf "${rootfs}" <"${src}" >"${dest}"
    done
    write_venv_pip_conf "${rootfs}"
    left_out="$(sort -u "${PIP_LEFT_OUT}" | paste -sd' ')"
    log "copied hosts, resolv.conf, CA bundle and pip settings into the rootfs${left_out:+ (left out local pip sources that exist only on this host: ${left_out})}"
}

# ------------------------------------------------------------------------------------------------------ mounts
is_mounted() { awk -v t="$1" '$2 == t { found = 1 } END { exit !found }' /proc/mounts; }

# Mount points at or below DIR, most recent first (the reverse of the order they were mounted).
mounts_under() { awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | tac; }

bind_once() {
    local src="$1" target="$2"
    is_mounted "${target}" && return 0
    mount --bind "${src}" "${target}"
    mount --make-rslave "${target}"  # nothing unmounted here may propagate back to the host
}

mount_provisioning() {
    local rootfs="$1"
    is_mounted "${rootfs}/proc" || mount -t proc proc "${rootfs}/proc"
    bind_once /dev "${rootfs}/dev"
}

write_cpuinfo() {
    local cpu
    for cpu in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "${cpu}"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done
    printf 'Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000e5a1a7ed\n'
    printf 'Model\t\t: Raspberry Pi 4 Model B Rev 1.1 (emulated by qemu-aarch64)\n'
}

# proc, /dev (+pts, shm), /sys, and a Cortex-A72 /proc/cpuinfo: without that file ai-edge-litert crashes under
# qemu, without /sys XNNPACK's CPU detection fails and it skips its ARM kernels.
mount_runtime() {
    local sub
    is_mounted "${ROOTFS}/proc" || mount -t proc proc "${ROOTFS}/proc"
    bind_once /dev "${ROOTFS}/dev"
    for sub in pts shm; do
        if is_mounted "/dev/${sub}"; then mkdir -p "${ROOTFS}/dev/${sub}"; bind_once "/dev/${sub}" "${ROOTFS}/dev/${sub}"; fi
    done
    bind_once /sys "${ROOTFS}/sys"
    write_cpuinfo >"${CPUINFO_FILE}"
    bind_once "${CPUINFO_FILE}" "${ROOTFS}/proc/cpuinfo"
}

unmount_under() {
    local base="$1" target
    while IFS= read -r target; do
        [[ -n "${target}" ]] || continue
        log "unmounting ${target}"
        umount "${target}" 2>/dev/null || umount --lazy "${target}" \
            || die "cannot unmount ${target}; a process may still use it (see: fuser -vm ${target})"
    done < <(mounts_under "${base}")
    [[ -z "$(mounts_under "${base}")" ]] || die "mounts remain below ${base}; see /proc/mounts"
}

# Remove a rootfs directory, but only once nothing is mounted below it (a bind of /dev would be wiped too).
remove_rootfs_dir() {
    local dir="$1"
    [[ -e "${dir}" ]] || return 0
    unmount_under "${dir}"
    rm -rf --one-file-system "${dir}"
}

# ------------------------------------------------------------------------------------------- rootfs and cache
cleanup_on_exit() {
    local rc=$?
    if (( rc != 0 )); then
        log "up failed (exit ${rc})"
        if (( RUNTIME_STARTED )); then
            log "stopping what this up started"
            stop_board || true
        fi
        if [[ -n "${PARTIAL_ROOTFS}" && -e "${PARTIAL_ROOTFS}" ]]; then
            log "removing the partial rootfs ${PARTIAL_ROOTFS}"
            remove_rootfs_dir "${PARTIAL_ROOTFS}" || log "could not remove ${PARTIAL_ROOTFS}; check /proc/mounts, then rm -rf it"
        fi
        if [[ -n "${PARTIAL_TARBALL}" && -e "${PARTIAL_TARBALL}" ]]; then
            log "removing the partial cache file ${PARTIAL_TARBALL}"
            rm -f "${PARTIAL_TARBALL}"
        fi
    fi
    return "${rc}"
}

# /etc/edgeprune-board inside: which recipe, mirror and Python packages this rootfs was built with.
write_build_info() {
    local rootfs="$1" mirror="$2"
    {
        printf 'recipe=%s\nsuite=%s\narch=%s\nmirror=%s\nbuilt=%s\n' "$(recipe_hash)" "${SUITE}" "${DEB_ARCH}" \
            "${mirror}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        in_chroot "${rootfs}" "${VENV}/bin/pip" freeze --all 2>/dev/null | sed 's/^/pip: /' || true
        in_chroot "${rootfs}" "${TFLITE_VENV}/bin/pip" freeze --all 2>/dev/null | sed 's/^/tflite venv pip: /' || true
    } >"$(rootfs_dest "${rootfs}" /etc/edgeprune-board)"
}

# provision_with_retries ROOTFS MIRROR: provision_rootfs in a fresh ROOTFS, up to PROVISION_ATTEMPTS times.
# Under emulation a package's maintainer script can fail on a loaded machine (debootstrap then gives up at
# "Configuring ..."); each failed attempt's own debootstrap log, which lives inside the rootfs that the next
# attempt or the exit trap removes, is kept beside the provisioning log and its end printed.
provision_with_retries() {
    local rootfs="$1" mirror="$2" attempt kept status
    for attempt in $(seq 1 "${PROVISION_ATTEMPTS}"); do
        remove_rootfs_dir "${rootfs}"
        mkdir -p "${rootfs}"
        # A subshell, so that a failure (die, or errexit) ends this attempt, not the script. Not run as an if
        # condition: that would switch errexit off inside it.
        set +e
        ( set -e; provision_rootfs "${rootfs}" "${mirror}" "${STATE_DIR}/provision.log" )
        status=$?
        set -e
        (( status != 0 )) || return 0
        kept="${STATE_DIR}/debootstrap-attempt-${attempt}.log"
        if cp "${rootfs}/debootstrap/debootstrap.log" "${kept}" 2>/dev/null; then
            log "attempt ${attempt} failed; the end of debootstrap's log (kept in ${kept}):"
            tail -n 20 "${kept}" >&2 || true
        else
            log "attempt ${attempt} failed (log: ${STATE_DIR}/provision.log)"
        fi
        unmount_under "${rootfs}"
    done
    die "provisioning the rootfs failed ${PROVISION_ATTEMPTS} times (logs: ${STATE_DIR}/provision.log, ${STATE_DIR}/debootstrap-attempt-*.log)"
}

build_rootfs() {
    local tarball="$1" work="${ROOTFS}.partial" mirror start=${SECONDS}
    mirror="$(debian_mirror)"
    PARTIAL_ROOTFS="${work}"
    mkdir -p "${CACHE_DIR}"
    provision_with_retries "${work}" "${mirror}"
    write_build_info "${work}" "${mirror}"

    log "packing the provisioned rootfs into ${tarball}"
    PARTIAL_TARBALL="${tarball}.partial.$$"
    tar --numeric-owner --one-file-system -C "${work}" -cpf - . | zstd -q -T0 -6 -o "${PARTIAL_TARBALL}"
    mv -f "${PARTIAL_TARBALL}" "${tarball}"
    PARTIAL_TARBALL=""
    # Older recipes' tarballs are dead weight now.
    find "${CACHE_DIR}" -maxdepth 1 -name "rootfs-*.tar.zst" ! -path "${tarball}" -print -delete \
        | sed 's/^/emulated-board: removed stale cache /' >&2
    mv "${work}" "${ROOTFS}"
    PARTIAL_ROOTFS=""
    log "cold build done in $((SECONDS - start)) s ($(du -h "${tarball}" | cut -f1) cached)"
}

restore_rootfs() {
    local tarball="$1" work="${ROOTFS}.partial" start=${SECONDS}
    log "restoring the rootfs from ${tarball}"
    remove_rootfs_dir "${work}"
    PARTIAL_ROOTFS="${work}"
    mkdir -p "${work}"
    zstd -q -dc "${tarball}" | tar --numeric-owner -C "${work}" -xpf - \
        || die "cannot unpack ${tarball}; delete it and run up again to rebuild"
    mv "${work}" "${ROOTFS}"
    PARTIAL_ROOTFS=""
    log "restored in $((SECONDS - start)) s"
}

ensure_rootfs() {
    local tarball hash
    tarball="$(cache_tarball)"; hash="$(recipe_hash)"
    if [[ -d "${ROOTFS}" && "$(cat "${RECIPE_FILE}" 2>/dev/null)" == "${hash}" ]]; then
        log "reusing the extracted rootfs ${ROOTFS}"
        return 0
    fi
    if [[ -d "${ROOTFS}" ]]; then
        log "${ROOTFS} is from another recipe; replacing it"
        remove_rootfs_dir "${ROOTFS}"
    fi
    if [[ -f "${tarball}" ]]; then
        restore_rootfs "${tarball}"
    else
        log "no cached rootfs for recipe ${hash} in ${CACHE_DIR}; building it (cold build, under 10 minutes)"
        build_rootfs "${tarball}"
    fi
    printf '%s\n' "${hash}" >"${RECIPE_FILE}"
}

# ---------------------------------------------------------------------------------------------------- sshd
ensure_keys() {
    [[ -f "${HOST_KEY}" ]] || ssh-keygen -q -t ed25519 -N '' -C "edgeprune-emulated-board-host" -f "${HOST_KEY}"
    [[ -f "${USER_KEY}" ]] || ssh-keygen -q -t ed25519 -N '' -C "edgeprune-emulated-board-user" -f "${USER_KEY}"
    printf '[%s]:%s %s\n' "${BOARD_HOST}" "${PORT}" "$(cut -d' ' -f1,2 "${HOST_KEY}.pub")" >"${KNOWN_HOSTS}"
    cat >"${SSH_CONFIG}" <<EOF
# Include this from ~/.ssh/config, or: ssh -F ${SSH_CONFIG} edgeprune-board
Host edgeprune-board
    HostName ${BOARD_HOST}
    Port ${PORT}
    User ${BOARD_USER}
    IdentityFile ${USER_KEY}
    IdentitiesOnly yes
    UserKnownHostsFile ${KNOWN_HOSTS}
    StrictHostKeyChecking yes
EOF
}

install_sshd_config() {
    install -m 0600 "${HOST_KEY}" "${ROOTFS}${HOST_KEY_IN}"
    install -d -m 0700 "${ROOTFS}/root/.ssh"
    install -m 0600 "${USER_KEY}.pub" "${ROOTFS}/root/.ssh/authorized_keys"
    install -d -m 0755 "${ROOTFS}/run/sshd"
    cat >"${ROOTFS}${SSHD_CONFIG_IN}" <<EOF
# Written by scripts/emulated-board.sh; the board's only sshd configuration.
ListenAddress ${BOARD_HOST}
Port ${PORT}
HostKey ${HOST_KEY_IN}
PidFile ${SSHD_PID_IN}
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
X11Forwarding no
PrintMotd no
UseDNS no
# Everything is 100x slower under qemu: give logins time.
LoginGraceTime 300
MaxStartups 20:30:60
Subsystem sftp internal-sftp
# qemu-user reads the CPU model to emulate from each new process's environment.
SetEnv QEMU_CPU=${QEMU_CPU_MODEL}
EOF
    in_chroot "${ROOTFS}" /usr/sbin/sshd -t -f "${SSHD_CONFIG_IN}" \
        || die "sshd rejects ${ROOTFS}${SSHD_CONFIG_IN}"
}

ssh_board() {
    ssh -F /dev/null -i "${USER_KEY}" -p "$(board_port)" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o UserKnownHostsFile="${KNOWN_HOSTS}" -o StrictHostKeyChecking=yes -o ConnectTimeout=10 \
        -o LogLevel=ERROR "${BOARD_USER}@${BOARD_HOST}" "$@"
}

board_port() { cat "${PORT_FILE}" 2>/dev/null || printf '%s\n' "${PORT}"; }

# The PID from the pid file, when that process still is this board's sshd (not a recycled PID).
board_pid() {
    local pid
    pid="$(cat "${PID_FILE}" 2>/dev/null)" || return 1
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    [[ "$(readlink "/proc/${pid}/root" 2>/dev/null)" == "$(realpath -m "${ROOTFS}")" ]] || return 1
    [[ "$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" == *sshd* ]] || return 1
    printf '%s\n' "${pid}"
}

port_in_use() { (exec 3<>"/dev/tcp/${BOARD_HOST}/${PORT}") 2>/dev/null; }

start_sshd() {
    local pid i
    port_in_use && die "${BOARD_HOST}:${PORT} is already taken by another program; set EMULATED_BOARD_PORT to a free port"
    rm -f "${ROOTFS}${SSHD_PID_IN}"
    in_chroot "${ROOTFS}" /usr/sbin/sshd -f "${SSHD_CONFIG_IN}" -E /var/log/edgeprune-sshd.log \
        || die "sshd did not start; see ${ROOTFS}/var/log/edgeprune-sshd.log"
    for ((i = 0; i < 100; i++)); do
        pid="$(cat "${ROOTFS}${SSHD_PID_IN}" 2>/dev/null)" && [[ -n "${pid}" ]] && break
        sleep 0.2
    done
    [[ -n "${pid:-}" ]] || die "sshd wrote no pid file; see ${ROOTFS}/var/log/edgeprune-sshd.log"
    printf '%s\n' "${pid}" >"${PID_FILE}"
    printf '%s\n' "${PORT}" >"${PORT_FILE}"
    log "sshd started (pid ${pid}) on ${BOARD_HOST}:${PORT}, emulating a ${QEMU_CPU_MODEL}"
}

wait_ready() {
    local i
    for ((i = 0; i < 60; i++)); do
        ssh_board true 2>/dev/null && return 0
        sleep 1
    done
    die "the board does not answer over SSH after 60 s; see ${ROOTFS}/var/log/edgeprune-sshd.log"
}

# Kill, by PID, the board's sshd and every process still running inside its rootfs (SSH sessions).
stop_processes() {
    local pid root rootfs_real pids=() i
    rootfs_real="$(realpath -m "${ROOTFS}")"
    if pid="$(board_pid)"; then pids+=("${pid}"); fi
    for root in /proc/[0-9]*/root; do
        pid="${root#/proc/}"; pid="${pid%/root}"
        [[ "$(readlink "${root}" 2>/dev/null)" == "${rootfs_real}" ]] && pids+=("${pid}")
    done
    (( ${#pids[@]} )) || return 0
    mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un)
    log "stopping pid(s) ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.1
    done
    log "still running after 5 s; sending SIGKILL to ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.5
}

stop_board() {
    stop_processes
    rm -f "${PID_FILE}" "${PORT_FILE}"
    [[ -d "${ROOTFS}" ]] && unmount_under "${ROOTFS}"
    return 0
}

# -------------------------------------------------------------------------------------------------- commands
with_lock() {
    mkdir -p "$(dirname "${LOCK_FILE}")"
    exec 9>"${LOCK_FILE}"
    flock -w 900 9 || die "another emulated-board.sh holds ${LOCK_FILE}"
}

cmd_up() {
    local pid start=${SECONDS}
    require_root; check_paths
    mkdir -p "${STATE_DIR}"; chmod 0700 "${STATE_DIR}"
    with_lock
    trap cleanup_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    if pid="$(board_pid)"; then
        [[ "$(board_port)" == "${PORT}" ]] \
            || die "the board is already up on port $(board_port), not ${PORT}; run down first"
        wait_ready
        log "already up: ${BOARD_USER}@${BOARD_HOST}:${PORT} (sshd pid ${pid})"
        return 0
    fi
    port_in_use && die "${BOARD_HOST}:${PORT} is already taken by another program; set EMULATED_BOARD_PORT to a free port"
    ensure_host_tools
    enable_binfmt
    RUNTIME_STARTED=1
    stop_board  # leftovers of a crashed run
    ensure_rootfs
    copy_host_config "${ROOTFS}"
    mount_runtime
    ensure_keys
    install_sshd_config
    start_sshd
    wait_ready
    RUNTIME_STARTED=0
    log "ready in $((SECONDS - start)) s: ssh -F ${SSH_CONFIG} edgeprune-board (python: ${VENV}/bin/python)"
    log "for tests: set -a; eval \"\$(${SCRIPT_PATH} env)\"; set +a"
}

cmd_down() {
    require_root; check_paths
    if [[ ! -d "${STATE_DIR}" ]]; then log "nothing is up (no ${STATE_DIR})"; return 0; fi
    with_lock
    stop_board
    remove_rootfs_dir "${ROOTFS}.partial"
    remove_rootfs_dir "${ROOTFS}"
    rm -f "${RECIPE_FILE}" "${CPUINFO_FILE}" "${PIP_LEFT_OUT}"
    log "down (cache kept in ${CACHE_DIR}; keys kept in ${STATE_DIR})"
}

cmd_status() {
    if [[ -f "${USER_KEY}" && -f "${KNOWN_HOSTS}" ]] && ssh_board true 2>/dev/null; then
        printf 'emulated-board: up at %s@%s port %s\n' "${BOARD_USER}" "${BOARD_HOST}" "$(board_port)"
        return 0
    fi
    printf 'emulated-board: not answering on %s:%s (run: scripts/emulated-board.sh up)\n' "${BOARD_HOST}" "$(board_port)" >&2
    return 1
}

cmd_env() {
    [[ -f "${USER_KEY}" ]] || die "no board keys in ${STATE_DIR}; run: sudo scripts/emulated-board.sh up"
    printf 'EDGEPRUNE_BOARD_HOST=%q\n' "${BOARD_HOST}"
    printf 'EDGEPRUNE_BOARD_PORT=%q\n' "$(board_port)"
    printf 'EDGEPRUNE_BOARD_USER=%q\n' "${BOARD_USER}"
    printf 'EDGEPRUNE_BOARD_KEY=%q\n' "${USER_KEY}"
    printf 'EDGEPRUNE_BOARD_KNOWN_HOSTS=%q\n' "${KNOWN_HOSTS}"
    printf 'EDGEPRUNE_BOARD_PYTHON=%q\n' "${VENV}/bin/python"
    printf 'EDGEPRUNE_BOARD_TFLITE_PYTHON=%q\n' "${TFLITE_VENV}/bin/python"
    printf 'EDGEPRUNE_BOARD_SSH_CONFIG=%q\n' "${SSH_CONFIG}"
}

main() {
    case "${1:-}" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        -h|--help|help) usage ;;
        *) usage; exit 2 ;;
    esac
}

main "$@"
