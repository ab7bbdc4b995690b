# tests/lib.sh - helpers for shell test suites (sourced).
#
#   ok "what"                 record a pass
#   not_ok "what" "why"       record a failure
#   expect_exit N "what" cmd...   run cmd, pass when it exits N; its output is in $OUT
#   expect_contains "what" "$text" "needle"
# Output lines are counted by tests/run-all. Each suite gets a private
# temp dir in $T, removed at exit.
#
#   cmig_program NAME         the path a suite runs program NAME by: $B/NAME,
#                             or under CMIG_VALGRIND=1 a wrapper in $T that
#                             runs it under memcheck ($BUNDLE is set so;
#                             lib-run.sh sets $RUN so)
set -u
CMIG_TOP=${CMIG_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
B=${B:-build}
case $B in /*) ;; *) B=$CMIG_TOP/$B ;; esac
TOOLS=$B/tests/tools
T=$(mktemp -d "${TMPDIR:-/tmp}/cmig-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

# `make valgrind` (tests/run-all with CMIG_VALGRIND=1 and
# CMIG_VALGRIND_LOGS): every run of a program goes through a wrapper that
# execs memcheck in its place, so that the process (and its pid, which
# suites signal) is the program's. Each process logs to a file of its own
# in CMIG_VALGRIND_LOGS, which tests/run-all reads after the suites: an
# error or a definite leak fails the run even where a suite does not look
# at the exit status (99 then). The paths are written into the wrapper
# because lr_setup clears CMIG_* from the environment. The log is named by
# mktemp, not by pid: over a whole run pids come round again, and a later
# process would overwrite an earlier one's report.
cmig_program() {
    if [ "${CMIG_VALGRIND:-0}" != 1 ]; then
        echo "$B/$1"
        return
    fi
    local w=$T/valgrind/$1 vg
    if [ ! -x "$w" ]; then
        vg=$(command -v valgrind) || { echo "$B/$1"; return 1; }
        mkdir -p "$T/valgrind"
        cat >"$w" <<EOF
#!/bin/sh
# $1 under memcheck (tests/lib.sh, CMIG_VALGRIND=1)
log=\$(mktemp "${CMIG_VALGRIND_LOGS:-$T/valgrind}/$1.XXXXXXXX.log") || exit 98
exec "$vg" --tool=memcheck --error-exitcode=99 --leak-check=full \\
    --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
    --suppressions="$CMIG_TOP/tests/valgrind.supp" \\
    --log-file="\$log" "$B/$1" "\$@"
EOF
        chmod 755 "$w"
    fi
    echo "$w"
}
BUNDLE=$(cmig_program cmig-bundle)
SUITE_NAME=${SUITE_NAME:-$(basename "$0" .sh)}
OUT=
RC=0

ok() { echo "ok - $SUITE_NAME: $1"; }
not_ok() { echo "not ok - $SUITE_NAME: $1"; [ -n "${2:-}" ] && printf '#   %s\n' "$2" | head -20; return 0; }

# expect_exit CODE DESC CMD... : runs CMD capturing stdout+stderr into $OUT.
expect_exit() {
    local want=$1 desc=$2; shift 2
    OUT=$("$@" 2>&1); RC=$?
    if [ "$RC" -eq "$want" ]; then ok "$desc"; else not_ok "$desc" "exit $RC, expected $want: $OUT"; fi
}

expect_contains() {
    local desc=$1 text=$2 needle=$3
    case $text in
        *"$needle"*) ok "$desc" ;;
        *) not_ok "$desc" "output does not contain '$needle': $text" ;;
    esac
}

expect_not_contains() {
    local desc=$1 text=$2 needle=$3
    case $text in
        *"$needle"*) not_ok "$desc" "output contains '$needle': $text" ;;
        *) ok "$desc" ;;
    esac
}
