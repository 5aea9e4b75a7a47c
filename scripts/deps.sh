#!/usr/bin/env bash
# Install what wslq needs to build and test on Debian 12 / Ubuntu 22.04+ (as root or with sudo).
# Safe to run again: apt-get skips what is there.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git ca-certificates
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
    libinih-dev libcjson-dev libcmocka-dev libopenblas-dev zlib1g-dev
    libmicrohttpd-dev libncurses-dev
    dataset-fashion-mnist
    python3 procps iproute2 shellcheck clang-format
)

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
    sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "wslq: installing ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
