# shellcheck shell=bash
# Helpers shared by scripts/test, scripts/run and scripts/bench.
# Sourced, never executed. Works on a fresh Debian 12 machine as root
# (or as a user with sudo for package installs).

# Repository root (the directory holding Cargo.toml).
MAOCLOUD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export MAOCLOUD_ROOT

log() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# True if the Debian package is installed.
package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_packages PKG... — apt-get install the packages that are missing.
# Runs `apt-get update` at most once per script run, and only when something
# must actually be installed, so reruns are fast.
_APT_UPDATED=0
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    log "installing: ${missing[*]} (apt-get; this can take a minute)"
    local apt_log
    apt_log="$(mktemp "${TMPDIR:-/tmp}/maocloud-apt.XXXXXX")"
    if [ "$_APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get update -qq >"$apt_log" 2>&1 || {
            cat "$apt_log" >&2
            rm -f "$apt_log"
            die "apt-get update failed"
        }
        _APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >"$apt_log" 2>&1 || {
        cat "$apt_log" >&2
        rm -f "$apt_log"
        die "apt-get install failed: ${missing[*]}"
    }
    rm -f "$apt_log"
    for pkg in "${missing[@]}"; do
        package_installed "$pkg" || die "package $pkg still not installed"
    done
}

# Make sure cargo is on PATH (rustup installs it in ~/.cargo/bin, which a
# non-login shell may not have on PATH yet).
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        local home_cargo="${CARGO_HOME:-$HOME/.cargo}/bin"
        if [ -x "$home_cargo/cargo" ]; then
            PATH="$home_cargo:$PATH"
            export PATH
        else
            die "cargo not found; install the Rust toolchain with rustup first"
        fi
    fi
}

# Print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}
