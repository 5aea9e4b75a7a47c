#!/usr/bin/env bash
# Install what wslq needs to build and test on Debian 12 / Ubuntu 22.04+ (as root or with sudo).
# Safe to run again: apt-get skips what is there.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git ca-certificates
    libzmq3-dev libsodium-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
    libinih-dev libcjson-dev libcmocka-dev libopenblas-dev zlib1g-dev
    libmicrohttpd-dev libncurses-dev libcurl4-openssl-dev
    dataset-fashion-mnist
    python3 procps iproute2 shellcheck clang-format
    prometheus nodejs mmdebstrap
)
# promtool (tests/integration/test_http_metrics.py) comes in the prometheus package;
# mmdebstrap makes the fresh Debian trees tests/integration/test_install.py installs into;
# chromium and node drive the dashboard's browser test. npm is its own package on Debian but
# part of nodejs from NodeSource, so it is added only when missing.
command -v npm >/dev/null 2>&1 || packages+=(npm)
# Installed when the distribution has them: Ubuntu ships chromium as a snap only (the
# browser test then skips, saying why); python3-torch runs torchrun in
# tests/integration/test_torchrun.py (skipped without it); podman with runc and catatonit
# (its --init) runs tests/integration/test_container.py in an image made from busybox-static.
optional=(chromium python3-torch podman runc catatonit busybox-static)

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
    sudo_cmd=(sudo)
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
opt_missing=()
for p in "${optional[@]}"; do
    installed "$p" || opt_missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ "${#opt_missing[@]}" -gt 0 ]; then
    "${sudo_cmd[@]}" apt-get update -qq
    for p in "${opt_missing[@]}"; do
        if apt-cache show "$p" >/dev/null 2>&1; then
            missing+=("$p")
        fi
    done
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "wslq: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
