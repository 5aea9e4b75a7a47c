#!/usr/bin/env bash
# Install wslq on a Linux machine, normally inside a WSL 2 distro on a lab PC.
#
#   sudo deploy/wsl/install.sh --join CODE          # worker node (default), joined with a code
#   sudo deploy/wsl/install.sh --scheduler-host     # the machine that runs wslq-scheduler
#   deploy/wsl/install.sh --dry-run                 # print what would be done, change nothing
#
# Run it again at any time: it changes only what differs from what it would install, and ends
# with "nothing changed" when everything was in place already.
#
# What it does, each step idempotent:
#   1. checks: WSL 2 or not; refuses to go on if a Linux NVIDIA driver package is installed
#      inside WSL (it shadows the Windows driver in /usr/lib/wsl/lib) unless --allow-linux-driver;
#   2. /etc/wsl.conf: merges [boot] systemd=true, keeping every other line (backup kept once);
#   3. binaries: installs the build and run dependencies with apt (only those missing), builds
#      the programs from this source tree, or copies them from --from-build DIR (only those
#      that differ);
#   4. config: /etc/wslq/wslq.conf from deploy/wslq.conf.example if there is none; the
#      --scheduler address and the --http dashboard address set in it (only those keys);
#      worker: the service account wslq that jobs run as (useradd --system, only if missing)
#      and the state directory /var/lib/wslq/worker (root's, 0711); with --join CODE, the
#      node's credentials (wslq-worker --join: a key pair enrolled with the code, 0600);
#   5. systemd: installs deploy/systemd/wslq-worker.service (or wslq-scheduler.service) plus a
#      drop-in that puts /usr/lib/wsl/lib on PATH and LD_LIBRARY_PATH, then enables it when
#      systemd is PID 1;
#   6. runs wslq-node-facts (the doctor) and prints its verdicts.
# It never installs an NVIDIA driver. --cuda-toolkit X-Y installs only cuda-toolkit-X-Y and
# refuses if apt would pull a driver package with it.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROLE=worker
DRY_RUN=0
FROM_BUILD=""
PREFIX=/usr/local
CUDA_TOOLKIT=""
ALLOW_DRIVER=0
WSL_LIB=/usr/lib/wsl/lib
# The unprivileged account jobs run as (run_as = service; worker/README.md, "Run-as modes");
# the worker itself runs as root and switches each job to it. Its home is the jobs' HOME.
SERVICE_USER=wslq
SERVICE_HOME=/var/lib/wslq/home
JOIN_CODE=""
SCHEDULER_ADDR=""
HTTP_ADDR=""
USER_SOCKET=0
# How many things this run changed (files written, packages, accounts, units).
CHANGED=0
# Driver packages that must not be inside WSL: they shadow the Windows driver (DESIGN.md §9.1).
DRIVER_RE='^(nvidia-driver.*|libnvidia-compute-.*|nvidia-dkms-.*|nvidia-kernel-.*|cuda-drivers.*|cuda|cuda-[0-9]+-[0-9]+|libcuda1|libnvidia-ml1)$'

usage() {
    cat <<USAGE
usage: install.sh [--join CODE] [--scheduler ADDR] [--scheduler-host] [--http ADDR:PORT]
                  [--user-socket] [--from-build DIR] [--prefix DIR] [--cuda-toolkit X-Y]
                  [--allow-linux-driver] [--dry-run]
  --join CODE           join the cluster with a code from 'wslq admin node invite' (on the
                        scheduler host); without it, run 'wslq-worker --join CODE' later
  --scheduler ADDR      reach the scheduler at ADDR (tcp://HOST:PORT) rather than the
                        address the code names; set in /etc/wslq/wslq.conf for the
                        worker ([worker]) and every user's wslq command ([client])
  --scheduler-host      install the scheduler's unit instead of the worker's
  --http ADDR:PORT      with --scheduler-host: where the dashboard listens, set in
                        /etc/wslq/wslq.conf; ADDR is an IPv4 address or the name of the
                        LAN interface (eth0:7421); default 127.0.0.1:7421 (this host only)
  --user-socket         with --scheduler-host: this host's users reach the scheduler through
                        /run/wslq/user.sock, as the enrolled wslq user of their account's
                        name (no credentials file, no CURVE handshake); sets user_socket in
                        [scheduler] and scheduler = unix:/run/wslq/user.sock in [client]
  --from-build DIR      copy binaries from DIR/bin (an existing build) instead of building
  --prefix DIR          where binaries go (default /usr/local)
  --cuda-toolkit X-Y    also apt install cuda-toolkit-X-Y (never a driver); needs NVIDIA's
                        WSL-Ubuntu apt repository configured
  --allow-linux-driver  go on even though a Linux NVIDIA driver is installed (not advised)
  --dry-run             print every command and file instead of running/writing it
USAGE
}

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: WARNING: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

# run CMD...: execute, or print in dry-run mode.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ %s\n' "$*"
    else
        "$@"
    fi
}

# change CMD...: run a command that changes the system, and count it.
change() {
    CHANGED=$((CHANGED + 1))
    run "$@"
}

# install_file SRC DEST MODE: copy SRC to DEST unless DEST has the same content and mode.
install_file() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest" &&
        [ "$(stat -c %a "$dest")" = "$mode" ]; then
        return 0
    fi
    change install -D -m "$mode" "$src" "$dest"
    [ "$DRY_RUN" = 1 ] || say "installed $dest"
}

# put_file PATH MODE: write stdin to PATH (atomically) unless PATH holds exactly that with
# that mode already, or print it in dry-run mode.
put_file() {
    local path=$1 mode=$2 tmp
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %s (mode %s):\n' "$path" "$mode"
        sed 's/^/|   /'
        return
    fi
    # Compared from a scratch file elsewhere, so an unchanged file leaves even its directory
    # untouched; a changed one is replaced atomically (a temporary beside it, then mv).
    local new
    new=$(mktemp /tmp/wslq-install.XXXXXX)
    cat >"$new"
    if [ -f "$path" ] && cmp -s "$new" "$path" && [ "$(stat -c %a "$path")" = "$mode" ]; then
        rm -f "$new"
        return 0
    fi
    mkdir -p "$(dirname "$path")"
    tmp=$(mktemp "$path.XXXXXX")
    cat "$new" >"$tmp"
    rm -f "$new"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    CHANGED=$((CHANGED + 1))
    say "wrote $path"
}

while [ $# -gt 0 ]; do
    case $1 in
    --scheduler-host) ROLE=scheduler ;;
    --user-socket) USER_SOCKET=1 ;;
    --join)
        JOIN_CODE=${2:?--join needs the code from wslq admin node invite}
        shift
        ;;
    --scheduler)
        SCHEDULER_ADDR=${2:?--scheduler needs an address like tcp://HOST:7420}
        case $SCHEDULER_ADDR in
        tcp://*:*) ;;
        *) die "--scheduler: '$SCHEDULER_ADDR' is not tcp://HOST:PORT" ;;
        esac
        shift
        ;;
    --http)
        HTTP_ADDR=${2:?--http needs ADDR:PORT, e.g. eth0:7421}
        case $HTTP_ADDR in
        *:[0-9]*) ;;
        *) die "--http: '$HTTP_ADDR' is not ADDR:PORT (an address or interface, a port)" ;;
        esac
        shift
        ;;
    --from-build)
        FROM_BUILD=${2:?--from-build needs a directory}
        shift
        ;;
    --prefix)
        PREFIX=${2:?--prefix needs a directory}
        shift
        ;;
    --cuda-toolkit)
        CUDA_TOOLKIT=${2:?--cuda-toolkit needs a version like 12-4}
        shift
        ;;
    --allow-linux-driver) ALLOW_DRIVER=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
    shift
done

if [ "$ROLE" = scheduler ] && [ -n "$JOIN_CODE" ]; then
    die "--join is for worker nodes; the scheduler host makes the codes (wslq admin node invite)"
fi
if [ "$ROLE" = worker ] && [ -n "$HTTP_ADDR" ]; then
    die "--http is for the scheduler host (--scheduler-host): the dashboard runs there"
fi
if [ "$ROLE" = worker ] && [ "$USER_SOCKET" = 1 ]; then
    die "--user-socket is for the scheduler host (--scheduler-host): the socket is the scheduler's"
fi
case $JOIN_CODE in
"" | wq1:*) ;;
*) die "--join: '$JOIN_CODE' is not a join code (they start with wq1:)" ;;
esac

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo), or use --dry-run to see what would be done"
fi

# ---- 1. checks -------------------------------------------------------------------------------
IS_WSL=0
if grep -qi microsoft /proc/sys/kernel/osrelease 2>/dev/null || [ -e /dev/dxg ]; then
    IS_WSL=1
    say "WSL 2 detected (kernel $(uname -r))"
    [ -e /dev/dxg ] || warn "/dev/dxg is missing: this VM has no GPU (WSL 1? gpuSupport=false?)"
    [ -e "$WSL_LIB/libcuda.so.1" ] || warn "$WSL_LIB/libcuda.so.1 missing: install the NVIDIA Windows driver"
else
    say "not WSL (kernel $(uname -r)): installing as a plain Linux $ROLE"
fi

installed_driver_pkgs() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    dpkg-query -W -f='${Package} ${db:Status-Status}\n' 2>/dev/null |
        awk '$2 == "installed" { print $1 }' | grep -E "$DRIVER_RE" || true
}

drivers=$(installed_driver_pkgs | tr '\n' ' ')
if [ -n "$drivers" ] && [ "$IS_WSL" = 1 ]; then
    warn "Linux NVIDIA driver packages are installed inside WSL: $drivers"
    warn "they shadow the Windows driver in $WSL_LIB and break CUDA/NVML."
    warn "fix: sudo apt-get purge $drivers"
    [ "$ALLOW_DRIVER" = 1 ] || die "refusing to continue (use --allow-linux-driver to override)"
fi

# ---- 2. /etc/wsl.conf ------------------------------------------------------------------------
# Print wsl.conf ($1) with [boot] systemd=true merged in: an existing systemd key in [boot] is
# set to true, a [boot] section without it gets the key, a file without [boot] gets the section.
merge_wsl_conf() {
    awk '
        function flush() { if (in_boot && !done) { print "systemd=true"; done = 1 } }
        /^[ \t]*\[/ {
            flush()
            in_boot = ($0 ~ /^[ \t]*\[boot\][ \t]*\r?$/)
            if (in_boot) seen_boot = 1
            print; next
        }
        in_boot && /^[ \t]*systemd[ \t]*=/ { if (!done) print "systemd=true"; done = 1; next }
        { print }
        END { flush(); if (!seen_boot) { print ""; print "[boot]"; print "systemd=true" } }
    ' "$1"
}

if [ "$IS_WSL" = 1 ]; then
    conf=/etc/wsl.conf
    current=""
    [ -f "$conf" ] && current=$(cat "$conf")
    if [ -f "$conf" ]; then
        merged=$(merge_wsl_conf "$conf")
    else
        merged=$(merge_wsl_conf /dev/null)
    fi
    if [ "$merged" = "$current" ]; then
        say "$conf already has [boot] systemd=true"
    else
        if [ -f "$conf" ] && [ ! -f "$conf.wslq-bak" ]; then
            change cp -p "$conf" "$conf.wslq-bak"
        fi
        printf '%s\n' "$merged" | put_file "$conf" 644
        say "$conf: [boot] systemd=true merged; restart WSL (wsl.exe --shutdown) to apply"
    fi
fi

# ---- 3. binaries -----------------------------------------------------------------------------
# Everything the build needs (CMakeLists.txt and the folders' pkg_check_modules: libzmq,
# protobuf-c, SQLite, inih, cJSON, cmocka, libsodium, libmicrohttpd, ncursesw, OpenBLAS, zlib;
# find_program: protoc-c, python3) and, through the -dev packages, the libraries the programs
# run with. The same names on Debian 12/13 and Ubuntu 22.04/24.04. scripts/deps.sh adds what
# the tests need.
BUILD_DEPS=(build-essential cmake pkg-config python3 libzmq3-dev libsodium-dev
    libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev libinih-dev libcjson-dev
    libcmocka-dev libmicrohttpd-dev libncurses-dev libopenblas-dev zlib1g-dev
    libcurl4-openssl-dev)
# Run-time only: the worker's /proc readers (procps), ip (iproute2), useradd for the service
# account (passwd: not in a minimal Debian 13), and the Fashion-MNIST files wslq-train reads
# by default (/usr/share/datasets/fashion-mnist).
RUN_DEPS=(procps iproute2 ca-certificates)
if [ "$ROLE" = worker ]; then
    RUN_DEPS+=(passwd dataset-fashion-mnist)
fi

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# apt_install PKG...: install the packages that are missing (apt-get update first, once).
APT_UPDATED=0
apt_install() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]}, and no apt-get"
    say "installing ${missing[*]}"
    if [ "$APT_UPDATED" = 0 ] && [ "$DRY_RUN" = 0 ]; then
        quietly "apt-get update" apt-get update -qq
        APT_UPDATED=1
    fi
    if [ "$DRY_RUN" = 1 ]; then
        change apt-get install -y -qq --no-install-recommends "${missing[@]}"
        return 0
    fi
    CHANGED=$((CHANGED + 1))
    quietly "apt-get install" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# quietly WHAT CMD...: run CMD with its output in a log that is shown only when it fails.
quietly() {
    local what=$1 log
    shift
    log=$(mktemp /tmp/wslq-install.XXXXXX)
    if ! "$@" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        rm -f "$log"
        die "$what failed (its last lines above)"
    fi
    rm -f "$log"
}

if [ -n "$CUDA_TOOLKIT" ]; then
    pkg="cuda-toolkit-$CUDA_TOOLKIT"
    if ! pkg_installed "$pkg"; then
        say "checking that $pkg pulls no driver"
        if apt-get -s install "$pkg" 2>/dev/null | awk '/^Inst /{print $2}' | grep -Eq "$DRIVER_RE"; then
            die "$pkg would install a Linux NVIDIA driver; use NVIDIA's WSL-Ubuntu repository"
        fi
        apt_install "$pkg"
    fi
fi

BINS=(wslq wslq-node-facts)
if [ "$ROLE" = worker ]; then
    BINS+=(wslq-worker wslq-rank wslq-train)
else
    BINS+=(wslq-scheduler)
fi

if [ -z "$FROM_BUILD" ]; then
    apt_install "${BUILD_DEPS[@]}" "${RUN_DEPS[@]}"
    FROM_BUILD="$SRC/build-release"
    # Only the programs installed here, not the tests: a clean build is minutes, a second
    # run with nothing changed in the tree rebuilds nothing.
    say "building ${BINS[*]} in $FROM_BUILD"
    if [ "$DRY_RUN" = 1 ]; then
        run cmake -S "$SRC" -B "$FROM_BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
        run cmake --build "$FROM_BUILD" -j "$(nproc)" --target "${BINS[@]}"
    else
        quietly "cmake (configure)" cmake -S "$SRC" -B "$FROM_BUILD" \
            -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
        quietly "the build" cmake --build "$FROM_BUILD" -j "$(nproc)" --target "${BINS[@]}"
    fi
else
    apt_install "${RUN_DEPS[@]}"
fi

for b in "${BINS[@]}"; do
    if [ -x "$FROM_BUILD/bin/$b" ] || [ "$DRY_RUN" = 1 ]; then
        install_file "$FROM_BUILD/bin/$b" "$PREFIX/bin/$b" 755
    else
        warn "$FROM_BUILD/bin/$b not built; skipped"
    fi
done

# ---- 4. config -------------------------------------------------------------------------------
# set_key SECTION KEY VALUE: the INI text on stdin with KEY = VALUE in [SECTION]: the first
# line that sets KEY there (or a commented-out one, "# KEY = ...") becomes it; without one the
# key goes at the end of the section, and a missing section is added. Every other line stays.
set_key() {
    awk -v sec="[$1]" -v key="$2" -v val="$3" '
        function emit() { print key " = " val; done = 1 }
        /^[ \t]*\[/ {
            if (insec && !done) emit()
            insec = ($0 == sec)
            if (insec) seen = 1
            print; next
        }
        insec && !done && $0 ~ ("^[#; \t]*" key "[ \t]*=") { emit(); next }
        { print }
        END {
            if (insec && !done) emit()
            if (!seen) { print ""; print sec; emit() }
        }
    '
}

# The config: the one there (or the example, the first time) with the flags' values set:
# --scheduler in [worker] and [client] (the worker and every user's wslq command), --http in
# [scheduler], --user-socket in [scheduler] and [client]. Written only when that changes it.
conf=/etc/wslq/wslq.conf
if [ -f "$conf" ]; then
    conf_base=$conf
else
    conf_base=$SRC/deploy/wslq.conf.example
fi
conf_text=$(cat "$conf_base")
if [ -n "$SCHEDULER_ADDR" ]; then
    conf_text=$(printf '%s\n' "$conf_text" | set_key worker scheduler "$SCHEDULER_ADDR" |
        set_key client scheduler "$SCHEDULER_ADDR")
fi
if [ -n "$HTTP_ADDR" ]; then
    conf_text=$(printf '%s\n' "$conf_text" | set_key scheduler http "$HTTP_ADDR")
fi
if [ "$USER_SOCKET" = 1 ]; then
    # /run/wslq is the scheduler unit's RuntimeDirectory; users on this host then connect by
    # their uid (the kernel's SO_PEERCRED), the workers keep the TCP address
    conf_text=$(printf '%s\n' "$conf_text" | set_key scheduler user_socket /run/wslq/user.sock |
        set_key client scheduler unix:/run/wslq/user.sock)
fi
if [ -f "$conf" ]; then
    say "$conf exists: only the keys the flags name are set in it"
fi
printf '%s\n' "$conf_text" | put_file "$conf" 644
if [ "$conf_base" != "$conf" ]; then
    say "check $conf (scheduler address, dashboard address) before starting"
fi

# The service account and the worker's state directory. Only what is missing is made: an
# existing account or directory is left as it is (systemd's StateDirectory= gives the directory
# to the unit's user at each start).
if [ "$ROLE" = worker ]; then
    if getent passwd "$SERVICE_USER" >/dev/null; then
        say "service account $SERVICE_USER exists"
    else
        run install -d -m 755 "$(dirname "$SERVICE_HOME")"
        change useradd --system --user-group --create-home --home-dir "$SERVICE_HOME" \
            --shell /usr/sbin/nologin "$SERVICE_USER"
        [ "$DRY_RUN" = 1 ] || say "created the service account $SERVICE_USER: jobs run as it"
    fi
    if [ -d /var/lib/wslq/worker ]; then
        say "/var/lib/wslq/worker exists; left as is"
    else
        run install -d -m 755 /var/lib/wslq
        change install -d -m 711 /var/lib/wslq/worker
    fi
    # The node's identity: a key pair enrolled with the one-time code, kept 0600 by root in
    # the state directory, out of the jobs' reach.
    if [ -n "$JOIN_CODE" ]; then
        join=("$PREFIX/bin/wslq-worker" --config /etc/wslq/wslq.conf --join "$JOIN_CODE")
        [ -n "$SCHEDULER_ADDR" ] && join+=(--scheduler "$SCHEDULER_ADDR")
        if [ -s /var/lib/wslq/worker/credentials ]; then
            warn "this node has joined already; --join replaces its credentials"
        fi
        change "${join[@]}"
    elif [ -s /var/lib/wslq/worker/credentials ]; then
        say "this node has joined already (/var/lib/wslq/worker/credentials)"
    else
        say "not joined yet: on the scheduler host run 'wslq admin node invite', then here"
        say "    sudo $PREFIX/bin/wslq-worker --config /etc/wslq/wslq.conf --join CODE"
    fi
fi

# ---- 5. systemd unit -------------------------------------------------------------------------
unit="wslq-$ROLE.service"
if [ -f "$SRC/deploy/systemd/$unit" ]; then
    install_file "$SRC/deploy/systemd/$unit" "/etc/systemd/system/$unit" 644
else
    warn "$SRC/deploy/systemd/$unit not found; unit not installed"
fi
# systemd services do not get WSL's PATH additions: give the unit /usr/lib/wsl/lib explicitly
# so NVML/CUDA (and nvidia-smi, for jobs) are found whatever the unit file says.
put_file "/etc/systemd/system/$unit.d/10-wsl.conf" 644 <<DROPIN
# Written by deploy/wsl/install.sh: the WSL GPU driver libraries for wslq and its jobs.
[Service]
Environment=PATH=$PREFIX/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$WSL_LIB
Environment=LD_LIBRARY_PATH=$WSL_LIB
DROPIN

if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    if [ "$CHANGED" -gt 0 ]; then
        run systemctl daemon-reload
    fi
    if [ -f "/etc/systemd/system/$unit" ] || [ "$DRY_RUN" = 1 ]; then
        if ! systemctl is-enabled --quiet "$unit" 2>/dev/null ||
            ! systemctl is-active --quiet "$unit" 2>/dev/null; then
            change systemctl enable --now "$unit"
        elif [ "$CHANGED" -gt 0 ]; then
            change systemctl restart "$unit"
        fi
    fi
else
    say "systemd is not PID 1 yet: after wsl.exe --shutdown and a restart, run"
    say "    sudo systemctl enable --now $unit"
fi

# ---- 6. doctor -------------------------------------------------------------------------------
probe="$PREFIX/bin/wslq-node-facts"
if [ "$DRY_RUN" = 0 ] && [ -x "$probe" ]; then
    say "node check (wslq-node-facts):"
    LD_LIBRARY_PATH=$WSL_LIB "$probe" || warn "the node check reports FAILs above: fix them before scheduling jobs"
else
    run "$probe"
fi
if [ "$ROLE" = scheduler ]; then
    say "next, here as root: 'wslq admin node invite' for each PC, 'wslq admin user add NAME'"
    say "for each person (each prints a one-time code)"
fi
if [ "$DRY_RUN" = 1 ]; then
    say "done ($ROLE, dry run: nothing changed)"
elif [ "$CHANGED" = 0 ]; then
    say "done ($ROLE): nothing changed, everything was in place already"
else
    say "done ($ROLE): $CHANGED changes"
fi
