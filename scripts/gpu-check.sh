#!/usr/bin/env bash
# The trainer's GPU checks in one run, for a machine lent for minutes (issue 18). --help says
# how; bench/train/README.md ("GPU checks in one run") says how a session uses it.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/gpu-check.sh [--dry-run] [--build-dir DIR] [--budget SECONDS]
       scripts/gpu-check.sh --prepare

Builds wslq-train with CUDA for this machine's GPU and runs each GPU check once, with a time
limit on each:
  ctest -L gpu        CUDA against CPU for every layer, whole steps, accuracy (one line a test)
  bench/train/bench_gpu   step time and samples/s, MLP and CNN at batch 64 and 256; NCCL
                      all-reduce through the trainer's own transport when 2+ GPUs exist
  one `wslq-train --device cuda` epoch of each net, with its test accuracy
  bench/train/torch_ref.py --device cuda   the same nets in this machine's PyTorch
It prints one line per check, PASS, FAIL or SKIP and the figure or the reason, and exits 0
unless a check FAILs. With $OUT set, $OUT/summary.txt and $OUT/gpu-check.log (every check's
whole output) are written as it goes; otherwise they are in build-gpu-check/.

  --prepare         On a Debian 12 development machine with network: apt-get download the
                    Debian packages the build needs (the GPU machine has no libzmq, protobuf-c,
                    sqlite... and no package registry) and Fashion-MNIST into .gpu-check/,
                    check them by unpacking into a temporary root, and print what the device
                    tool will carry.
  (no option)       On the GPU machine, from the repository root: unpack .gpu-check/debs into
                    build-gpu-check/prefix (no root, no apt), find NCCL (the system's,
                    $NCCL_HOME, or the copy PyTorch ships), configure build-gpu-check/build for
                    the local GPU architecture only, build the trainer, its tests and
                    bench_gpu, run the checks. Without .gpu-check the system's packages are used.
  --build-dir DIR   Use this configured build tree: nothing unpacked or configured; the
                    targets are built there (a no-op when up to date).
  --dry-run         Hide every GPU (CUDA_VISIBLE_DEVICES=""): each GPU check runs its real path
                    and must say SKIP with the driver's reason. The ctest gpu_check_dry_run is
                    `--dry-run --build-dir <its build tree>`.
  --budget S        Time for the whole run (default 420 s); a check gets what is left.

With the device tool (a session whose `status` says can_start_another: true):
  1. here:    scripts/gpu-check.sh --prepare
  2. device:  run  command "bash scripts/gpu-check.sh"  carry [".gpu-check"]  timeout_s 480
  3. give_back, unless rerunning at once (a rerun on the warm machine rebuilds only what
     changed). The summary is at the end of the reply's output_tail and in summary.txt.
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
trap 'echo "gpu-check: internal error at line $LINENO (exit $?): please report it" >&2' ERR
PREP=$ROOT/.gpu-check
mode=run
dry=0
build_dir=
BUDGET=420
while [ $# -gt 0 ]; do
    case $1 in
    --prepare) mode=prepare ;;
    --dry-run) dry=1 ;;
    --build-dir)
        [ $# -ge 2 ] || { echo "gpu-check: --build-dir needs a directory" >&2; exit 2; }
        build_dir=$2
        shift
        ;;
    --budget)
        if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
            echo "gpu-check: --budget needs a number of seconds" >&2
            exit 2
        fi
        BUDGET=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "gpu-check: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

# ---- what the build needs, as Debian 12 packages ----------------------------------------------
# Development packages, downloaded as they are (their own -dev dependencies are not: the .pc
# files' Requires.private lines, which only static linking reads, are dropped when unpacked).
DEV_PKGS=(libzmq3-dev libprotobuf-c-dev libsqlite3-dev libinih-dev libcjson-dev libcmocka-dev
    libopenblas-dev libopenblas-pthread-dev zlib1g-dev libmicrohttpd-dev libncurses-dev libcurl4-openssl-dev
    pkg-config pkgconf)
# Their libraries and the tools (protoc-c, pkgconf), with everything these need at run time.
RUNTIME_PKGS=(libzmq5 libprotobuf-c1 libsqlite3-0 libinih1 libinireader0 libcjson1 libcmocka0
    libopenblas0 libopenblas0-pthread zlib1g libmicrohttpd12 libncurses6 libncursesw6 libtinfo6
    protobuf-c-compiler pkgconf-bin libpkgconf3)
# Never carried: every machine with a C/C++ compiler has newer ones (glibc, the gcc runtime),
# OpenSSL 3 is in every current image (only libkrb5, for libzmq's GSSAPI, needs it), and
# libgnutls30 is needed only by libmicrohttpd (the scheduler's HTTP server, not built here).
NOT_CARRIED=(libc6 libgcc-s1 gcc-12-base libstdc++6 libcrypt1 libssl3 libgnutls30)
ASSUMED_SONAMES=(libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2
    libutil.so.1 ld-linux-x86-64.so.2 libstdc++.so.6 libgcc_s.so.1 libssl.so.3 libcrypto.so.3
    libgnutls.so.30)
DATA_PKG=dataset-fashion-mnist
PC_MODULES=(libzmq libprotobuf-c sqlite3 inih libcjson cmocka openblas zlib libmicrohttpd
    ncursesw)
HEADERS=(zmq.h protobuf-c/protobuf-c.h sqlite3.h ini.h cjson/cJSON.h cmocka.h
    x86_64-linux-gnu/openblas-pthread/cblas.h zlib.h microhttpd.h ncursesw/curses.h)
FMNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
    t10k-labels-idx1-ubyte)
CARRY_LIMIT_MIB=64

die() {
    echo "gpu-check: $*" >&2
    exit 1
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes_of() { du -sb "$1" | awk '{print $1}'; }

# Unpack one .deb into a directory: dpkg-deb where it exists, else ar + tar.
deb_extract() {
    if command -v dpkg-deb >/dev/null 2>&1; then
        dpkg-deb -x "$1" "$2"
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$1") && tar -xf "$tmp"/data.tar.* -C "$2"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

# Unpack every .deb of DEBDIR into PREFIX and make it usable from there: absolute symlinks
# and the .pc files' /usr paths point into PREFIX; Requires.private lines are dropped.
unpack_prefix() {
    local debdir f t p
    debdir=$(cd "$1" && pwd) || return 1
    p=$2
    rm -rf "$p" && mkdir -p "$p" || return 1
    for f in "$debdir"/*.deb; do
        deb_extract "$f" "$p" || { echo "cannot unpack $f" >&2; return 1; }
    done
    while IFS= read -r -d '' f; do
        t=$(readlink "$f")
        case $t in /*) ln -sfn "$p$t" "$f" || return 1 ;; esac
    done < <(find "$p" -type l -print0)
    while IFS= read -r -d '' f; do
        sed -i -e "s#^\([A-Za-z_][A-Za-z0-9_.]*\)=/\(usr\|lib\)\([/ ]\|\$\)#\1=$p/\2\3#" \
            -e "s#\([[:space:]]\)-\([IL]\)/\(usr\|lib\)/#\1-\2$p/\3/#g" \
            -e '/^Requires\.private:/d' "$f" || return 1
    done < <(find "$p" -name '*.pc' -type f -print0)
}

# The pkgconfig folders of PREFIX, ':'-separated.
pc_path() { find "$1" -type d -name pkgconfig | sort | paste -sd: -; }

# Shared libraries this machine lacks, linked into PREFIX/gap (LD_LIBRARY_PATH holds only
# these, so no library of the system is ever replaced by an older Debian one).
make_gap() {
    local p=$1 have f n ldc
    rm -rf "$p/gap"
    mkdir -p "$p/gap"
    have=
    for ldc in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
        if have=$("$ldc" -p 2>/dev/null | awk '/=>/ {print $1}'); then
            break
        fi
    done
    while IFS= read -r -d '' f; do
        n=${f##*/}
        if grep -qxF "$n" <<<"$have" || [ -e "$p/gap/$n" ] || [ -e "/lib/x86_64-linux-gnu/$n" ] ||
            [ -e "/usr/lib/x86_64-linux-gnu/$n" ] || [ -e "/usr/lib64/$n" ]; then
            continue
        fi
        ln -s "$f" "$p/gap/$n"
    done < <(find "$p/usr/lib" "$p/lib" -name 'lib*.so.[0-9]*' \( -type f -o -type l \) \
        -print0 2>/dev/null)
}

# ---- --prepare ------------------------------------------------------------------------------
prepare() {
    local c
    for c in apt-get apt-cache dpkg-deb readelf; do
        command -v "$c" >/dev/null 2>&1 ||
            die "--prepare needs $c: run it on a Debian 12 development machine"
    done
    echo "gpu-check --prepare: resolving packages on" \
        "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Resolve the run-time closure as apt would install it on an empty machine, with the
    # packages that are never carried marked installed so that nothing behind them is pulled.
    local p v
    : >"$tmp/status"
    for p in "${NOT_CARRIED[@]}"; do
        v=$(apt-cache show --no-all-versions "$p" 2>/dev/null |
            awk '/^Version:/ {print $2; exit}') || true
        [ -n "$v" ] || die "apt-cache knows no $p: is this Debian 12, with apt lists?"
        printf 'Package: %s\nStatus: install ok installed\nArchitecture: amd64\n' "$p" \
            >>"$tmp/status"
        printf 'Multi-Arch: same\nVersion: %s\n\n' "$v" >>"$tmp/status"
    done
    local closure
    closure=$(apt-get -s -o Dir::State::status="$tmp/status" --no-install-recommends install \
        "${RUNTIME_PKGS[@]}" 2>&1) || die "apt-get cannot resolve the packages: $closure"
    local -a pkgs
    mapfile -t pkgs < <({
        printf '%s\n' "${DEV_PKGS[@]}"
        awk '/^Inst / {print $2}' <<<"$closure"
    } | grep -vxF -f <(printf '%s\n' "${NOT_CARRIED[@]}") | sort -u)

    # Download and check in a temporary folder; .gpu-check is replaced only when all is well.
    local new=$tmp/prep
    mkdir -p "$new/debs"
    local -a aptopt=()
    [ "$(id -u)" != 0 ] || aptopt=(-o APT::Sandbox::User=root)
    echo "gpu-check --prepare: apt-get download ${#pkgs[@]} packages + $DATA_PKG"
    if ! (cd "$new/debs" && apt-get "${aptopt[@]}" -q download "${pkgs[@]}" "$DATA_PKG" \
        >"$tmp/dl.log" 2>&1); then
        die "apt-get download failed (is Debian's archive reachable? 'sudo apt-get update'" \
            "first?): $(tail -n 3 "$tmp/dl.log")"
    fi
    # A header for PyTorch's NCCL, in case its package ships the library without one.
    local inc
    for inc in "${CUDA_PATH:-/usr/local/cuda}/include" /usr/include; do
        if [ -f "$inc/nccl.h" ]; then
            mkdir -p "$new/nccl/include"
            cp "$inc/nccl.h" "$new/nccl/include/"
            break
        fi
    done

    # Check: unpack into a temporary root exactly as the GPU machine will.
    local root=$tmp/root ok=1 m out h libdirs
    unpack_prefix "$new/debs" "$root" || die "unpacking the downloaded packages failed"
    libdirs=$(find "$root" -name '*.so*' \( -type f -o -type l \) -printf '%h\n' | sort -u |
        paste -sd: -)
    for m in "${PC_MODULES[@]}"; do
        if ! out=$(PKG_CONFIG_LIBDIR=$(pc_path "$root") PKG_CONFIG_PATH='' \
            LD_LIBRARY_PATH=$libdirs "$root/usr/bin/pkgconf" --cflags --libs "$m" 2>&1); then
            echo "  FAIL pkg-config $m: $out"
            ok=0
        elif grep -qE -- "(^| )-[IL]/(usr|lib)" <<<"$out"; then
            echo "  FAIL pkg-config $m points outside the unpacked root: $out"
            ok=0
        fi
    done
    for h in "${HEADERS[@]}"; do
        [ -f "$root/usr/include/$h" ] || { echo "  FAIL missing header $h"; ok=0; }
    done
    if ! out=$(LD_LIBRARY_PATH=$libdirs "$root/usr/bin/protoc-c" --version 2>&1); then
        echo "  FAIL protoc-c does not run from the unpacked root: $out"
        ok=0
    fi
    # Every shared library or program unpacked finds what it links in the root, or in the
    # short list of libraries assumed on any machine.
    local f need assumed
    assumed=$(printf '%s\n' "${ASSUMED_SONAMES[@]}")
    while IFS= read -r -d '' f; do
        [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
        for need in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            if ! grep -qxF "$need" <<<"$assumed" &&
                [ -z "$(find "$root" -name "$need" -print -quit)" ]; then
                echo "  FAIL ${f#"$root"} needs $need, which no carried package has"
                ok=0
            fi
        done
    done < <(find "$root/usr/bin" "$root/usr/lib" "$root/lib" -type f -print0 2>/dev/null)
    for f in "${FMNIST_FILES[@]}"; do
        [ -f "$root/usr/share/datasets/fashion-mnist/$f.gz" ] ||
            { echo "  FAIL $DATA_PKG lacks $f.gz"; ok=0; }
    done
    [ "$ok" = 1 ] || die "the downloaded packages are incomplete (above); .gpu-check is unchanged"
    (cd "$new/debs" && find . -name '*.deb') | sed 's#^\./##; s/_.*//' | sort >"$new/packages.txt"
    rm -rf "$PREP"
    mv "$new" "$PREP"

    # What the device tool will carry: this folder plus the working tree (tracked files and
    # untracked ones git does not ignore).
    local data_b prep_b tree_b total_b
    data_b=$(stat -c %s "$PREP/debs/${DATA_PKG}"_*.deb)
    prep_b=$(bytes_of "$PREP")
    tree_b=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard 2>/dev/null |
        xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}') || true
    total_b=$((prep_b + tree_b))
    echo "gpu-check --prepare: packages (bytes):"
    (cd "$PREP/debs" && stat -c '%s %n' ./*.deb) | sort -n |
        awk '{printf "  %9d  %s\n", $1, substr($2, 3)}'
    echo "gpu-check --prepare: ${PREP#"$ROOT"/}: $(wc -l <"$PREP/packages.txt") packages," \
        "$(mib "$prep_b") MiB ($DATA_PKG $(mib "$data_b") MiB), checked by unpacking into a" \
        "temporary root (pkg-config for ${#PC_MODULES[@]} modules, headers, protoc-c, every" \
        "library's dependencies)"
    echo "gpu-check --prepare: the device tool carries $(mib "$total_b") MiB of its" \
        "$CARRY_LIMIT_MIB MiB (working tree $(mib "$tree_b") MiB + ${PREP#"$ROOT"/})"
    if [ "$total_b" -gt $((56 * 1048576)) ]; then
        die "that is too close to the $CARRY_LIMIT_MIB MiB limit: shrink the working tree" \
            "(large untracked files?) first"
    fi
    echo "gpu-check --prepare: next, with the device tool: run command \"bash scripts/gpu-check.sh\"" \
        "carry [\".gpu-check\"] timeout_s 480; then give_back"
}

if [ "$mode" = prepare ]; then
    prepare
    exit 0
fi

# ---- the run --------------------------------------------------------------------------------
T0=$SECONDS
if [ -n "$build_dir" ]; then
    B=$(cd "$build_dir" 2>/dev/null && pwd) || die "--build-dir $build_dir: no such directory"
    [ -f "$B/CMakeCache.txt" ] || die "--build-dir $B is not a configured CMake tree" \
        "(no CMakeCache.txt)"
    WORK=$B/gpu-check
else
    WORK=$ROOT/build-gpu-check
    B=$WORK/build
fi
LOGDIR=$WORK/logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    SUMMARY=$OUT/summary.txt
    FULL=$OUT/gpu-check.log
else
    SUMMARY=$WORK/summary.txt
    FULL=$WORK/gpu-check.log
fi
: >"$SUMMARY"
: >"$FULL"
n_pass=0
n_fail=0
n_skip=0

say() { printf '%s\n' "$*" | tee -a "$SUMMARY" >>"$FULL"; printf '%s\n' "$*"; }
# report PASS|FAIL|SKIP NAME TEXT...: one summary line.
report() {
    local line
    line=$(printf '%-4s  %-26s %s' "$1" "$2" "${*:3}")
    say "$line"
    case $1 in
    PASS) n_pass=$((n_pass + 1)) ;;
    FAIL) n_fail=$((n_fail + 1)) ;;
    *) n_skip=$((n_skip + 1)) ;;
    esac
}
left() { echo $((BUDGET - (SECONDS - T0))); }
join_lines() { awk '{printf "%s%s", (NR > 1 ? "; " : ""), $0}'; }

# run_limited NAME CAP CMD...: CMD's output to $LOGDIR/NAME.log (and the whole log), under
# `timeout` of CAP seconds or what is left of the budget. Sets RC (124: timed out, 125: not
# started for lack of time), SECS and LOG.
run_limited() {
    local name=$1 cap=$2 t s
    shift 2
    LOG=$LOGDIR/$name.log
    t=$(($(left) - 5))
    [ "$t" -le "$cap" ] || t=$cap
    SECS=0
    if [ "$t" -lt 5 ]; then
        RC=125
        echo "not started: too little of the ${BUDGET} s budget left" >"$LOG"
        return 0
    fi
    s=$SECONDS
    set +e
    timeout -k 10 "$t" "$@" >"$LOG" 2>&1 </dev/null
    RC=$?
    set -e
    SECS=$((SECONDS - s))
    LIMIT=$t
    {
        printf '\n==== %s: exit %d after %d s (limit %d s)\n==== %s\n' "$name" "$RC" "$SECS" \
            "$t" "$*"
        tail -n 4000 "$LOG"
    } >>"$FULL"
}
# What failed: the error line given, else why the last limited command did not succeed.
failure_text() {
    if [ -n "$1" ]; then
        echo "$1 (log: ${LOG#"$ROOT"/})"
    else
        why_not
    fi
}
# Why the last limited command did not succeed.
why_not() {
    case $RC in
    124 | 137) echo "timed out after ${LIMIT} s (log: ${LOG#"$ROOT"/})" ;;
    125) echo "not started: too little of the ${BUDGET} s budget left" ;;
    *)
        echo "exit $RC: $(grep -v '^[[:space:]]*$' "$LOG" | tail -n 1 | cut -c1-200)" \
            "(log: ${LOG#"$ROOT"/})"
        ;;
    esac
}

dry_note=
[ "$dry" = 0 ] || dry_note=", dry run (GPUs hidden)"
say "gpu-check: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo "?") on $(uname -n)," \
    "$(date -u '+%Y-%m-%d %H:%M UTC'), budget ${BUDGET} s$dry_note"
if [ "$dry" = 1 ]; then
    export CUDA_VISIBLE_DEVICES=""
fi

# ---- deps -----------------------------------------------------------------------------------
PREFIX=$WORK/prefix
cmake_extra=()
if [ -n "$build_dir" ]; then
    report PASS deps "configured tree $B (--build-dir): nothing to unpack"
elif compgen -G "$PREP/debs/*.deb" >/dev/null; then
    s=$SECONDS
    if unpack_prefix "$PREP/debs" "$PREFIX" >"$LOGDIR/deps.log" 2>&1 &&
        make_gap "$PREFIX" >>"$LOGDIR/deps.log" 2>&1; then
        export PATH="$PREFIX/usr/bin:$PATH"
        PKG_CONFIG_PATH=$(pc_path "$PREFIX")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
        export PKG_CONFIG_PATH
        export CMAKE_PREFIX_PATH="$PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
        export LD_LIBRARY_PATH="$PREFIX/gap${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        cmake_extra+=(-DPKG_CONFIG_EXECUTABLE="$PREFIX/usr/bin/pkgconf"
            -DPROTOC_C="$PREFIX/usr/bin/protoc-c")
        n_debs=$(find "$PREP/debs" -name '*.deb' | wc -l)
        n_gap=$(find "$PREFIX/gap" -type l | wc -l)
        if pv=$(protoc-c --version 2>&1 | sed -n 1p) && [ -n "$pv" ]; then
            text="$n_debs packages unpacked into ${PREFIX#"$ROOT"/} in $((SECONDS - s)) s;"
            text="$text $n_gap libraries this machine lacks on LD_LIBRARY_PATH;"
            report PASS deps "$text $pv, pkgconf $(pkgconf --version)"
        else
            report FAIL deps "protoc-c from the prepared packages does not run: $pv" \
                "(rerun --prepare on Debian 12)"
        fi
    else
        report FAIL deps "unpacking ${PREP#"$ROOT"/}/debs failed: $(tail -n 1 "$LOGDIR/deps.log")"
    fi
else
    missing=()
    for m in "${PC_MODULES[@]}"; do
        pkg-config --exists "$m" 2>/dev/null || missing+=("$m")
    done
    command -v protoc-c >/dev/null 2>&1 || missing+=(protoc-c)
    if [ "${#missing[@]}" -gt 0 ]; then
        report FAIL deps "no ${PREP#"$ROOT"/}/debs and this machine lacks ${missing[*]}: run" \
            "scripts/gpu-check.sh --prepare on a development machine and carry .gpu-check"
        say "gpu-check: 0 PASS, 0 SKIP, 1 FAIL: nothing can be built"
        exit 1
    fi
    report PASS deps "this machine's packages (no ${PREP#"$ROOT"/}/debs)"
fi

# ---- data: Fashion-MNIST for the accuracy epochs ----------------------------------------------
SYS_DATA=/usr/share/datasets/fashion-mnist
DATA=
for d in "${WSLQ_GPU_DATA:-}" "$PREFIX/usr/share/datasets/fashion-mnist" "$SYS_DATA"; do
    if [ -n "$d" ] && compgen -G "$d/train-images-idx3-ubyte*" >/dev/null; then
        DATA=$d
        break
    fi
done
if [ -z "$DATA" ]; then
    report SKIP data "no Fashion-MNIST (not in ${PREP#"$ROOT"/}, not in $SYS_DATA): the" \
        "accuracy checks skip; --prepare carries $DATA_PKG"
elif [ "$DATA" = "$SYS_DATA" ]; then
    report PASS data "Fashion-MNIST in $DATA"
else
    note=
    # train_run_gpu_acc reads only $SYS_DATA; link it there where this user may (the GPU
    # machine runs commands as root), never in a dry run.
    if [ "$dry" = 0 ] && [ ! -e "$SYS_DATA" ] && mkdir -p "${SYS_DATA%/*}" 2>/dev/null &&
        ln -s "$DATA" "$SYS_DATA" 2>/dev/null; then
        note="; linked from $SYS_DATA for ctest"
    elif [ ! -e "$SYS_DATA" ]; then
        note="; ctest's train_run_gpu_acc will skip (it reads only $SYS_DATA)"
    fi
    report PASS data "Fashion-MNIST in ${DATA#"$ROOT"/}$note"
fi

# ---- NCCL: the system's, $NCCL_HOME, or the copy PyTorch ships ----------------------------------
find_pythons() {
    local py seen=
    for py in "${WSLQ_GPU_PYTHON:-}" "$(command -v python3 2>/dev/null || true)" /usr/bin/python3 \
        /opt/torch/.venv/bin/python3; do
        if [ -z "$py" ] || [ ! -x "$py" ]; then
            continue
        fi
        case " $seen " in *" $py "*) continue ;; esac
        seen="$seen $py"
        echo "$py"
    done
}
# Sets nccl_lib, nccl_inc (a folder), nccl_from and inc_note: $NCCL_HOME, else the CUDA
# toolkit or the system, else PyTorch's nvidia-nccl wheel (nvidia/nccl/lib/libnccl.so.2, and
# usually its header in a folder beside lib; else the nccl.h that --prepare carried).
find_nccl() {
    local d py dirs l
    nccl_lib=
    nccl_inc=
    nccl_from=
    inc_note=
    if [ -n "${NCCL_HOME:-}" ]; then
        nccl_lib=$(find "$NCCL_HOME" -maxdepth 3 -name 'libnccl.so*' 2>/dev/null | sort |
            sed -n 1p) || true
        nccl_inc=$(find "$NCCL_HOME" -maxdepth 3 -name nccl.h -printf '%h\n' 2>/dev/null |
            sed -n 1p) || true
        nccl_from="\$NCCL_HOME"
    fi
    if [ -z "$nccl_lib" ]; then
        for d in "$cuda_root/lib64" "$cuda_root/lib" /usr/lib/x86_64-linux-gnu /usr/lib64; do
            if [ -e "$d/libnccl.so.2" ]; then
                nccl_lib=$d/libnccl.so.2
                nccl_from="system"
                break
            fi
        done
        if [ -n "$nccl_lib" ]; then
            for d in "$cuda_root/include" /usr/include; do
                if [ -f "$d/nccl.h" ]; then
                    nccl_inc=$d
                    break
                fi
            done
        fi
    fi
    if [ -z "$nccl_lib" ]; then
        while IFS= read -r py; do
            dirs=$(env -u LD_LIBRARY_PATH timeout 60 "$py" -c \
                'import nvidia, sys; print("\n".join(nvidia.__path__))' 2>/dev/null) || continue
            while IFS= read -r d; do
                [ -d "$d" ] || continue
                l=$(find "$d" -maxdepth 4 -name 'libnccl.so.2' 2>/dev/null | sed -n 1p) || true
                [ -n "$l" ] || continue
                nccl_lib=$l
                nccl_inc=$(find "$(dirname "$(dirname "$l")")" -maxdepth 2 -name nccl.h \
                    -printf '%h\n' 2>/dev/null | sed -n 1p) || true
                nccl_from="PyTorch's ($py)"
                break 2
            done <<<"$dirs"
        done < <(find_pythons)
    fi
    if [ -n "$nccl_lib" ] && [ -z "$nccl_inc" ] && [ -f "$PREP/nccl/include/nccl.h" ]; then
        nccl_inc=$PREP/nccl/include
        inc_note=", nccl.h carried from the development machine"
    fi
    return 0
}
nvcc_path=$(command -v nvcc 2>/dev/null || echo "${CUDA_PATH:-/usr/local/cuda}/bin/nvcc")
cuda_root=$(dirname "$(dirname "$nvcc_path")")
# The toolkit's libraries (cudart, cuBLAS) the build links, for machines whose loader is not
# told where they are.
for d in "$cuda_root/lib64" "$cuda_root/lib" "$cuda_root/targets/x86_64-linux/lib"; do
    if compgen -G "$d/libcudart.so.*" >/dev/null; then
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
        break
    fi
done
NCCL_LIBDIR=
if [ -n "$build_dir" ]; then
    nl=$(sed -n 's/^WSLQ_NCCL_LIBRARY:[A-Z]*=//p' "$B/CMakeCache.txt")
    if [ -n "$nl" ] && [ "${nl%NOTFOUND}" = "$nl" ]; then
        report PASS nccl "the tree's: $nl"
    else
        report SKIP nccl "the tree was configured without NCCL (no nccl.h/libnccl found then)"
    fi
else
    find_nccl
    if [ -n "$nccl_lib" ] && [ -n "$nccl_inc" ]; then
        NCCL_LIBDIR=$(dirname "$nccl_lib")
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$NCCL_LIBDIR"
        cmake_extra+=(-DWSLQ_NCCL_LIBRARY="$nccl_lib" -DWSLQ_NCCL_INCLUDE="$nccl_inc")
        hv=$(awk '/^#define NCCL_(MAJOR|MINOR|PATCH) / {v = v (v ? "." : "") $3} END {print v}' \
            "$nccl_inc/nccl.h")
        report PASS nccl "$nccl_from: $nccl_lib, nccl.h $hv in $nccl_inc${inc_note:-}"
    elif [ -n "$nccl_lib" ]; then
        report SKIP nccl "found $nccl_lib ($nccl_from) but no nccl.h beside it or in" \
            "${PREP#"$ROOT"/}/nccl: built without NCCL; NCCL checks skipped"
    else
        report SKIP nccl "no libnccl.so.2 in the CUDA toolkit ($cuda_root) or the system," \
            "\$NCCL_HOME unset, no python3 with nvidia.nccl: built without NCCL (2-rank GPU" \
            "runs use the TCP ring); NCCL checks skipped"
    fi
fi

# ---- configure and build ----------------------------------------------------------------------
finish() {
    local tail_note=$1
    say "gpu-check: $n_pass PASS, $n_skip SKIP, $n_fail FAIL in $((SECONDS - T0)) s$tail_note;" \
        "whole output: ${FULL#"$ROOT"/}"
    if [ "$n_fail" = 0 ]; then
        exit 0
    fi
    exit 1
}
if [ -z "$build_dir" ]; then
    arch=${WSLQ_CUDA_ARCH:-}
    arch_note=
    if [ -z "$arch" ]; then
        arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d ' .' |
            grep -E '^[0-9]+$' | sort -u | paste -sd';' -) || true
        if [ -z "$arch" ]; then
            arch=90
            arch_note=" (nvidia-smi named no GPU: sm_90, the H200's)"
        fi
    fi
    gen=()
    if [ ! -f "$B/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
        gen=(-G Ninja)
    fi
    run_limited configure 180 cmake -S "$ROOT" -B "$B" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DWSLQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" "${cmake_extra[@]}"
    if [ "$RC" != 0 ]; then
        err=$(grep -m 1 -A 3 'CMake Error' "$LOG" | tr -s ' \n' ' ' | cut -c1-240) || true
        report FAIL configure "$(failure_text "$err")"
        finish ": the build could not be configured"
    fi
    line=$(grep -m 1 -o 'wslq-train: CUDA backend.*' "$LOG" | sed 's/^wslq-train: //') || true
    report PASS configure "$line, CUDA architectures $arch$arch_note, ${SECS} s"
fi
help=$(cmake --build "$B" --target help 2>/dev/null || true)
targets=(wslq-train train_run_test)
for t in train_cuda_test bench_gpu; do
    if grep -qE "(^|[ .])$t(:|\$| )" <<<"$help"; then
        targets+=("$t")
    fi
done
run_limited build 300 cmake --build "$B" --parallel "$(nproc)" --target "${targets[@]}"
if [ "$RC" != 0 ]; then
    err=$(grep -m 1 -E 'error|Error' "$LOG" | cut -c1-240) || true
    report FAIL build "$(failure_text "$err")"
    if [ -z "$build_dir" ] && [ -n "$NCCL_LIBDIR" ] && [ "$RC" != 124 ] && [ "$RC" != 125 ]; then
        # One more try without NCCL, so that one odd library costs the NCCL checks only.
        run_limited configure-no-nccl 120 cmake "$B" -DWSLQ_NCCL_LIBRARY=WSLQ_NCCL_LIBRARY-NOTFOUND \
            -DWSLQ_NCCL_INCLUDE=WSLQ_NCCL_INCLUDE-NOTFOUND
        [ "$RC" != 0 ] || run_limited build-no-nccl 300 cmake --build "$B" --parallel "$(nproc)" \
            --target "${targets[@]}"
        [ "$RC" = 0 ] || finish ": nothing to run"
        line=$(grep -m 1 -o 'wslq-train: CUDA backend.*' "$LOGDIR/configure-no-nccl.log" |
            sed 's/^wslq-train: //') || true
        report PASS build "retried without that NCCL ($line): ${targets[*]} in ${SECS} s"
    else
        finish ": nothing to run"
    fi
else
    report PASS build "${targets[*]} in ${SECS} s"
fi
BIN=$B/bin
if grep -q '^WSLQ_SANITIZE:STRING=.' "$B/CMakeCache.txt"; then
    # The CUDA runtime maps device memory where ASan's shadow gap is (train/tests do the same).
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}protect_shadow_gap=0"
fi

# ---- devices ----------------------------------------------------------------------------------
# shellcheck disable=SC2016 # $1 is sh's, not ours
run_limited devices 60 sh -c '"$1" --list-devices && "$1" --version' sh "$BIN/wslq-train"
NGPU=0
NOGPU_WHY=
if [ "$RC" != 0 ]; then
    report FAIL devices "wslq-train --list-devices: $(why_not)"
else
    NGPU=$(sed -n 's/^cuda devices: \([0-9]*\).*/\1/p' "$LOG" | sed -n 1p)
    NGPU=${NGPU:-0}
    if [ "$NGPU" = 0 ]; then
        NOGPU_WHY=$(sed -n 's/^cuda devices: 0 (\(.*\))$/\1/p' "$LOG" | sed -n 1p)
        NOGPU_WHY="no GPU: ${NOGPU_WHY:-none visible}"
        report SKIP devices "$NOGPU_WHY"
    else
        descr=$(grep -E '^  cuda:' "$LOG" | sed 's/^  //' | join_lines | cut -c1-200) || true
        vers=$(grep -E '^(cuda|transports):' "$LOG" | join_lines) || true
        report PASS devices "$NGPU GPU(s): $descr; $vers"
        if [ "$dry" = 1 ]; then
            report FAIL devices "--dry-run set CUDA_VISIBLE_DEVICES=\"\" yet $NGPU GPU(s) are visible"
        fi
    fi
fi
# In a run without a GPU every GPU check must skip, saying why.
skip_text() { echo "${NOGPU_WHY:-no GPU found (the devices check failed)}"; }

# ---- ctest -L gpu, one line per test ------------------------------------------------------------
# ctest runs from a folder of its own that includes the tree, so that its logs never mix with
# those of a ctest already running in the tree (this script runs as one of its tests).
CT=$WORK/ctest
mkdir -p "$CT"
printf 'subdirs("%s")\n' "$B" >"$CT/CTestTestfile.cmake"
mapfile -t gpu_tests < <(ctest --test-dir "$CT" -L gpu -FA '.*' -N 2>/dev/null |
    sed -n 's/^ *Test *#[0-9]*: //p')
if [ "${#gpu_tests[@]}" = 0 ]; then
    report FAIL ctest "ctest -L gpu lists no tests in $B"
fi
for t in "${gpu_tests[@]}"; do
    run_limited "ctest-$t" 300 ctest --test-dir "$CT" -R "^$t\$" -FA '.*' -V
    res=$(sed -n "s/.*Test *#[0-9]*: $t [ .]*\(\*\*\*\)\{0,1\}\([A-Za-z][A-Za-z ]*[a-z]\)[: ].*sec.*/\2/p" \
        "$LOG" | sed -n 1p)
    # The test's own output: ctest -V prefixes it with "<number>: ".
    body=$(sed -n 's/^[0-9][0-9]*: //p' "$LOG" |
        grep -vE '^(Test command|Working Directory|Environment variables|Test timeout computed)|^ ' ||
        true)
    if [ "$RC" = 124 ] || [ "$RC" = 137 ] || [ "$RC" = 125 ]; then
        report FAIL "ctest:$t" "$(why_not)"
        continue
    fi
    case $res in
    Passed)
        if grep -q 'largest |gpu - cpu|' <<<"$body"; then
            fig=$(awk '/largest \|gpu - cpu\|/ {n++; v = $NF + 0; if (v >= w) {w = v; what = $0}}
                END {sub(/ +[0-9]+ (elements|params).*/, "", what)
                    printf "%d comparisons, largest |gpu - cpu| %.3g (%s)", n, w, what}' <<<"$body")
        else
            fig=$(join_lines <<<"$body" | cut -c1-240)
        fi
        report PASS "ctest:$t" "$fig"
        ;;
    Skipped)
        why=$(grep -m 1 -i 'skipped' <<<"$body" | sed 's/^skipped: //' | cut -c1-240) || true
        report SKIP "ctest:$t" "${why:-skipped, no reason given}"
        ;;
    *)
        fails=$(grep -m 3 -iE 'fail|error|timeout' <<<"$body" | join_lines | cut -c1-240) || true
        report FAIL "ctest:$t" "${res:-no result}: ${fails:-$(tail -n 1 <<<"$body")}" \
            "(log: ${LOG#"$ROOT"/})"
        ;;
    esac
done

# ---- bench_gpu: step time, samples/s, NCCL all-reduce --------------------------------------------
declare -A WSLQ_SPS=()
if [ ! -x "$BIN/bench_gpu" ]; then
    report SKIP bench:step "bench_gpu not built (no CUDA in this tree)"
    report SKIP bench:nccl "bench_gpu not built (no CUDA in this tree)"
else
    run_limited bench_gpu 180 "$BIN/bench_gpu"
    if [ "$RC" = 77 ]; then
        why=$(grep -m 1 '^no GPU' "$LOG" || true)
        report SKIP bench:step "${why:-exit 77}"
        report SKIP bench:nccl "${why:-exit 77}"
    else
        # "  mlp:784-256-128-10   64   0.123   520000"
        while read -r model batch ms sps; do
            WSLQ_SPS["${model%%:*} $batch"]="$sps $ms"
        done < <(grep -E '^  (mlp|cnn):[^ ]+ +[0-9]+ +[0-9.]+ +[0-9]+$' "$LOG" || true)
        if [ "${#WSLQ_SPS[@]}" -gt 0 ]; then
            fig=
            for k in "mlp 64" "mlp 256" "cnn 64" "cnn 256"; do
                [ -n "${WSLQ_SPS[$k]:-}" ] || continue
                read -r sps ms <<<"${WSLQ_SPS[$k]}"
                fig="$fig${fig:+; }$k: $sps samples/s ($ms ms)"
            done
            report PASS bench:step "$fig"
        else
            report FAIL bench:step "$(why_not)"
        fi
        if grep -q '^# NCCL all-reduce: needs 2 to ' "$LOG"; then
            report SKIP bench:nccl "all-reduce needs 2 or more GPUs, this machine has $NGPU"
        elif grep -q '^# NCCL all-reduce: ' "$LOG"; then
            report SKIP bench:nccl "$(sed -n 's/^# NCCL all-reduce: //p' "$LOG" | sed -n 1p)"
        elif grep -q '^# NCCL all-reduce (' "$LOG"; then
            fig=$(awk '
                function size(x) {
                    return x >= 1048576 ? x / 1048576 " MiB" : (x >= 1024 ? x / 1024 " KiB" : x " B")
                }
                /^# NCCL all-reduce \(/ {split($0, a, ", "); ranks = a[3]}
                /^  +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$/ {
                    n++
                    if ($1 + 0 > b) {b = $1 + 0; bus = $5}
                    if ($5 + 0 > peak) {peak = $5 + 0; pb = $1 + 0}
                }
                END {
                    if (n) printf "%s: busbw %.2f GB/s at %s (largest), peak %.2f GB/s at %s",
                        ranks, bus, size(b), peak, size(pb)
                }' "$LOG")
            if [ "$RC" = 0 ] && [ -n "$fig" ]; then
                report PASS bench:nccl "$fig"
            else
                report FAIL bench:nccl "${fig:+$fig; }$(why_not)"
            fi
        else
            report SKIP bench:nccl "not reached: $(why_not)"
        fi
    fi
fi

# ---- one epoch of each net on the GPU -----------------------------------------------------------
for net in mlp cnn; do
    # Without a GPU it runs all the same: --device cuda is refused, with the driver's reason,
    # before any data is read.
    if [ -z "$DATA" ] && [ "$NGPU" != 0 ]; then
        report SKIP "epoch:$net" "no Fashion-MNIST (see data)"
        continue
    fi
    metrics=$LOGDIR/epoch-$net.jsonl
    rm -f "$metrics"
    run_limited "epoch-$net" 150 env WSLQ_METRICS="$metrics" "$BIN/wslq-train" --device cuda \
        --model "$net" --epochs 1 --data "${DATA:-$WORK/no-data}"
    if [ "$RC" = 0 ]; then
        last=$(grep '"test_acc"' "$metrics" 2>/dev/null | tail -n 1) || true
        acc=$(grep -o '"test_acc":[0-9.]*' <<<"$last" | cut -d: -f2) || true
        sps=$(grep -o '"samples_per_s":[0-9.]*' <<<"$last" | cut -d: -f2) || true
        if [ -n "$acc" ]; then
            report PASS "epoch:$net" "test accuracy $acc after 1 epoch, ${sps%.*} samples/s," \
                "${SECS} s wall"
        else
            report FAIL "epoch:$net" "exit 0 but no test_acc in $metrics"
        fi
    elif [ "$RC" = 2 ] && [ "$NGPU" = 0 ] &&
        grep -q 'no usable CUDA device\|CUDA support not built' "$LOG"; then
        report SKIP "epoch:$net" "$(sed -n 's/^wslq-train: --device cuda: //p' "$LOG" | sed -n 1p)"
    else
        report FAIL "epoch:$net" "$(why_not)"
    fi
done

# ---- the same nets in PyTorch on the same GPU ---------------------------------------------------
if [ "$NGPU" = 0 ]; then
    report SKIP torch "$(skip_text)"
else
    torch_py=
    while IFS= read -r py; do
        t=$(($(left) - 30))
        [ "$t" -le 90 ] || t=90
        if [ "$t" -gt 0 ] && env -u LD_LIBRARY_PATH timeout "$t" "$py" -c 'import torch' >/dev/null 2>&1; then
            torch_py=$py
            break
        fi
    done < <(find_pythons)
    if [ -z "$torch_py" ]; then
        report SKIP torch "no python3 here imports torch ($(find_pythons | paste -sd' ' -))"
    else
        for net in mlp cnn; do
            run_limited "torch-$net" 120 env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 "$torch_py" \
                "$ROOT/bench/train/torch_ref.py" --device cuda "$net" 1 64,256
            if [ "$RC" = 0 ]; then
                ver=$(grep -m 1 -o '^torch [^ ]*' "$LOG") || true
                fig=
                while read -r batch sps ms; do
                    cmp=
                    if [ -n "${WSLQ_SPS[$net $batch]:-}" ]; then
                        w=${WSLQ_SPS[$net $batch]%% *}
                        cmp=$(awk -v w="$w" -v t="$sps" \
                            'BEGIN {printf "; wslq-train/torch %.2fx", w / t}')
                    fi
                    fig="$fig${fig:+; }b$batch $sps samples/s ($ms ms$cmp)"
                done < <(sed -nE \
                    's/.* batch ([0-9]+) steps [0-9]+: ([0-9]+) samples\/s, ([0-9.]+) ms.*/\1 \2 \3/p' \
                    "$LOG")
                report PASS "torch:$net" "$ver: $fig"
            elif [ "$RC" = 77 ]; then
                report SKIP "torch:$net" "$(head -n 1 "$LOG")"
            else
                report FAIL "torch:$net" "$(why_not)"
            fi
        done
    fi
fi

if [ "$NGPU" = 0 ]; then
    finish " ($(skip_text))"
fi
finish ""
