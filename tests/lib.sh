# tests/lib.sh - helpers for shell test suites (sourced).
#
#   ok "what"                 record a pass
#   not_ok "what" "why"       record a failure
#   expect_exit N "what" cmd...   run cmd, pass when it exits N; its output is in $OUT
#   expect_contains "what" "$text" "needle"
# Output lines are counted by tests/run-all. Each suite gets a private
# temp dir in $T, removed at exit.
set -u
CMIG_TOP=${CMIG_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
B=${B:-build}
case $B in /*) ;; *) B=$CMIG_TOP/$B ;; esac
BUNDLE=$B/cmig-bundle
TOOLS=$B/tests/tools
T=$(mktemp -d "${TMPDIR:-/tmp}/cmig-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
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
