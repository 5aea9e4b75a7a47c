#!/usr/bin/env bash
# Install wslq on a Linux machine, normally inside a WSL 2 distro on a lab PC.
#
#   sudo deploy/wsl/install.sh --join CODE          # worker node (default), joined with a code
#   sudo deploy/wsl/install.sh --scheduler-host     # the machine that runs wslq-scheduler
#   deploy/wsl/install.sh --dry-run                 # print what would be done, change nothing
#
# What it does, each step idempotent:
#   1. checks: WSL 2 or not; refuses to go on if a Linux NVIDIA driver package is installed
#      inside WSL (it shadows the Windows driver in /usr/lib/wsl/lib) unless --allow-linux-driver;
#   2. /etc/wsl.conf: merges [boot] systemd=true, keeping every other line (backup kept once);
#   3. binaries: builds from the source tree (--build, the default when no --from-build) after
#      installing the build dependencies with apt, or copies them from --from-build DIR;
#   4. config: /etc/wslq/wslq.conf from deploy/wslq.conf.example if there is none;
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
# Driver packages that must not be inside WSL: they shadow the Windows driver (DESIGN.md §9.1).
DRIVER_RE='^(nvidia-driver.*|libnvidia-compute-.*|nvidia-dkms-.*|nvidia-kernel-.*|cuda-drivers.*|cuda|cuda-[0-9]+-[0-9]+|libcuda1|libnvidia-ml1)$'

usage() {
    cat <<USAGE
usage: install.sh [--join CODE] [--scheduler ADDR] [--scheduler-host] [--from-build DIR]
                  [--prefix DIR] [--cuda-toolkit X-Y] [--allow-linux-driver] [--dry-run]
  --join CODE           join the cluster with a code from 'wslq admin node invite' (on the
                        scheduler host); without it, run 'wslq-worker --join CODE' later
  --scheduler ADDR      reach the scheduler at ADDR (tcp://HOST:PORT) rather than the
                        address the code names
  --scheduler-host      install the scheduler's unit instead of the worker's
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

# put_file PATH MODE: write stdin to PATH (atomically), or print it in dry-run mode.
put_file() {
    local path=$1 mode=$2 tmp
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %s (mode %s):\n' "$path" "$mode"
        sed 's/^/|   /'
        return
    fi
    mkdir -p "$(dirname "$path")"
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
}

while [ $# -gt 0 ]; do
    case $1 in
    --scheduler-host) ROLE=scheduler ;;
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
            run cp -p "$conf" "$conf.wslq-bak"
        fi
        printf '%s\n' "$merged" | put_file "$conf" 644
        say "$conf: [boot] systemd=true merged; restart WSL (wsl.exe --shutdown) to apply"
    fi
fi

# ---- 3. binaries -----------------------------------------------------------------------------
BUILD_DEPS=(build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
    libsqlite3-dev libinih-dev libcjson-dev)

if [ -n "$CUDA_TOOLKIT" ]; then
    pkg="cuda-toolkit-$CUDA_TOOLKIT"
    say "checking that $pkg pulls no driver"
    if apt-get -s install "$pkg" 2>/dev/null | awk '/^Inst /{print $2}' | grep -Eq "$DRIVER_RE"; then
        die "$pkg would install a Linux NVIDIA driver; use NVIDIA's WSL-Ubuntu repository"
    fi
    run apt-get install -y --no-install-recommends "$pkg"
fi

if [ -z "$FROM_BUILD" ]; then
    run apt-get update
    run apt-get install -y --no-install-recommends "${BUILD_DEPS[@]}"
    FROM_BUILD="$SRC/build-release"
    run cmake -S "$SRC" -B "$FROM_BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
    run cmake --build "$FROM_BUILD" -j "$(nproc)"
fi

BINS=(wslq wslq-node-facts)
if [ "$ROLE" = worker ]; then
    BINS+=(wslq-worker wslq-rank wslq-train)
else
    BINS+=(wslq-scheduler)
fi
for b in "${BINS[@]}"; do
    if [ -x "$FROM_BUILD/bin/$b" ] || [ "$DRY_RUN" = 1 ]; then
        run install -D -m 755 "$FROM_BUILD/bin/$b" "$PREFIX/bin/$b"
    else
        warn "$FROM_BUILD/bin/$b not built; skipped"
    fi
done

# ---- 4. config -------------------------------------------------------------------------------
if [ -f /etc/wslq/wslq.conf ]; then
    say "/etc/wslq/wslq.conf exists; left as is"
elif [ -f "$SRC/deploy/wslq.conf.example" ]; then
    run install -D -m 644 "$SRC/deploy/wslq.conf.example" /etc/wslq/wslq.conf
    say "edit /etc/wslq/wslq.conf (scheduler address, cluster interface) before starting"
fi

# The service account and the worker's state directory. Only what is missing is made: an
# existing account or directory is left as it is (systemd's StateDirectory= gives the directory
# to the unit's user at each start).
if [ "$ROLE" = worker ]; then
    if getent passwd "$SERVICE_USER" >/dev/null; then
        say "service account $SERVICE_USER exists"
    else
        run install -d -m 755 "$(dirname "$SERVICE_HOME")"
        run useradd --system --user-group --create-home --home-dir "$SERVICE_HOME" \
            --shell /usr/sbin/nologin "$SERVICE_USER"
        [ "$DRY_RUN" = 1 ] || say "created the service account $SERVICE_USER: jobs run as it"
    fi
    if [ -d /var/lib/wslq/worker ]; then
        say "/var/lib/wslq/worker exists; left as is"
    else
        run install -d -m 755 /var/lib/wslq
        run install -d -m 711 /var/lib/wslq/worker
    fi
    # The node's identity: a key pair enrolled with the one-time code, kept 0600 by root in
    # the state directory, out of the jobs' reach.
    if [ -n "$JOIN_CODE" ]; then
        join=("$PREFIX/bin/wslq-worker" --config /etc/wslq/wslq.conf --join "$JOIN_CODE")
        [ -n "$SCHEDULER_ADDR" ] && join+=(--scheduler "$SCHEDULER_ADDR")
        run "${join[@]}"
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
    run install -D -m 644 "$SRC/deploy/systemd/$unit" "/etc/systemd/system/$unit"
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
    run systemctl daemon-reload
    if [ -f "/etc/systemd/system/$unit" ] || [ "$DRY_RUN" = 1 ]; then
        run systemctl enable --now "$unit"
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
say "done ($ROLE)"
