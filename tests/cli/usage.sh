#!/usr/bin/env bash
# tests/cli/usage.sh - cmig-bundle's command line surface: --version, the
# command list, `help CMD` printing exactly what `CMD --help` prints, and
# exit code 2 with a hint for every kind of usage mistake (unknown command,
# unknown option, missing option argument, missing required argument).
# Help goes to stdout; errors go to stderr and leave stdout empty, so that
# scripts can tell the two apart.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Settings from the caller's environment must not change what is tested.
for v in $(compgen -e); do
    case $v in CMIG_TOP) ;; CMIG_*) unset "$v" ;; esac
done
unset SOURCE_DATE_EPOCH
# Under sanitizers a report must never pass for an exit code a test expects.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:print_stacktrace=1"

if [ ! -x "$BUNDLE" ]; then
    not_ok "cmig-bundle is built" "$BUNDLE missing (make B=... $BUNDLE)"
    exit 1
fi
cd "$T" || exit 1

COMMANDS="keygen build sign verify inspect diff"
VERSION=$(sed -n 's/^VERSION *:= *//p' "$CMIG_TOP/Makefile")

# run CMD...: stdout in $SOUT, stderr in $SERR, exit code in $RC.
run() {
    "$@" >"$T/stdout" 2>"$T/stderr"
    RC=$?
    SOUT=$(cat "$T/stdout")
    SERR=$(cat "$T/stderr")
}

# usage_error DESC NEEDLE CMD...: exit 2, NEEDLE and a hint on stderr,
# nothing on stdout.
usage_error() {
    local desc=$1 needle=$2; shift 2
    run "$@"
    if [ "$RC" -eq 2 ]; then ok "$desc: exit 2"; else not_ok "$desc: exit 2" "exit $RC: $SERR"; fi
    expect_contains "$desc: says what is wrong" "$SERR" "$needle"
    case $SERR in
        *"--help"* | *"help COMMAND"*) ok "$desc: gives a hint" ;;
        *) not_ok "$desc: gives a hint" "$SERR" ;;
    esac
    if [ -z "$SOUT" ]; then ok "$desc: stdout is empty"; else not_ok "$desc: stdout is empty" "$SOUT"; fi
}

# --- version --------------------------------------------------------------------

run "$BUNDLE" --version
if [ "$RC" -eq 0 ] && [ "$SOUT" = "cmig-bundle $VERSION" ] && [ -z "$SERR" ]; then
    ok "--version prints 'cmig-bundle $VERSION' on stdout"
else
    not_ok "--version prints 'cmig-bundle $VERSION' on stdout" "exit $RC: '$SOUT' '$SERR'"
fi
run "$BUNDLE" version
if [ "$RC" -eq 0 ] && [ "$SOUT" = "cmig-bundle $VERSION" ]; then
    ok "'version' is the same as --version"
else
    not_ok "'version' is the same as --version" "exit $RC: '$SOUT' '$SERR'"
fi

# --- the command list -------------------------------------------------------------

run "$BUNDLE" help
help_text=$SOUT
if [ "$RC" -eq 0 ] && [ -z "$SERR" ]; then ok "help: exit 0, nothing on stderr"; else not_ok "help: exit 0, nothing on stderr" "exit $RC: $SERR"; fi
expect_contains "help: starts with a usage line" "$(head -1 <<<"$help_text")" "usage: cmig-bundle COMMAND"
listed=$(awk '/^commands:/ { on = 1; next } on && /^$/ { on = 0 } on { print $1 }' <<<"$help_text" | tr '\n' ' ')
if [ "$listed" = "$COMMANDS " ]; then
    ok "help lists exactly the commands: $COMMANDS"
else
    not_ok "help lists exactly the commands: $COMMANDS" "listed: $listed"
fi
expect_contains "help documents the exit codes" "$help_text" "exit codes:"
for flag in --help -h; do
    run "$BUNDLE" "$flag"
    if [ "$RC" -eq 0 ] && [ "$SOUT" = "$help_text" ]; then
        ok "'$flag' prints the same text as 'help'"
    else
        not_ok "'$flag' prints the same text as 'help'" "exit $RC: $(diff <(echo "$help_text") <(echo "$SOUT"))"
    fi
done

run "$BUNDLE"
if [ "$RC" -eq 2 ] && [ -z "$SOUT" ]; then ok "no arguments: exit 2, stdout empty"; else not_ok "no arguments: exit 2, stdout empty" "exit $RC: $SOUT"; fi
expect_contains "no arguments: the usage goes to stderr" "$SERR" "usage: cmig-bundle COMMAND"

# --- help CMD == CMD --help == CMD -h ----------------------------------------------

for cmd in $COMMANDS; do
    run "$BUNDLE" help "$cmd"
    h1=$SOUT rc1=$RC e1=$SERR
    if [ "$rc1" -eq 0 ] && [ -z "$e1" ]; then ok "help $cmd: exit 0, nothing on stderr"; else not_ok "help $cmd: exit 0, nothing on stderr" "exit $rc1: $e1"; fi
    expect_contains "help $cmd: starts with its usage line" "$(head -1 <<<"$h1")" "usage: cmig-bundle $cmd"
    for flag in --help -h; do
        run "$BUNDLE" "$cmd" "$flag"
        if [ "$RC" -eq 0 ] && [ -z "$SERR" ]; then ok "$cmd $flag: exit 0, nothing on stderr"; else not_ok "$cmd $flag: exit 0, nothing on stderr" "exit $RC: $SERR"; fi
        if [ "$SOUT" = "$h1" ]; then
            ok "'help $cmd' and '$cmd $flag' print the same text"
        else
            not_ok "'help $cmd' and '$cmd $flag' print the same text" "$(diff <(echo "$h1") <(echo "$SOUT"))"
        fi
    done
    # --help wins over anything else on the line, even a mistake.
    run "$BUNDLE" "$cmd" --no-such-option --help
    if [ "$RC" -eq 0 ] && [ "$SOUT" = "$h1" ]; then
        ok "$cmd: --help after an unknown option still prints the help"
    else
        not_ok "$cmd: --help after an unknown option still prints the help" "exit $RC: $SERR"
    fi
    # Options have environment variables (for CI and containers): the help says which.
    case $cmd in
        keygen | build | sign | verify | inspect) expect_contains "help $cmd mentions an environment variable" "$h1" "env CMIG_" ;;
    esac
done

# --- usage mistakes: exit 2 with a hint ----------------------------------------------

usage_error "unknown command" "unknown command 'frobnicate'" "$BUNDLE" frobnicate
usage_error "unknown command that looks like an option" "unknown command '--frobnicate'" "$BUNDLE" --frobnicate
usage_error "help for an unknown command" "unknown command 'frobnicate'" "$BUNDLE" help frobnicate
expect_contains "help for an unknown command: the hint is a command that works" "$SERR" "try 'cmig-bundle --help'"
usage_error "commands are not abbreviated" "unknown command 'bui'" "$BUNDLE" bui
usage_error "commands are case-sensitive" "unknown command 'BUILD'" "$BUNDLE" BUILD

for cmd in $COMMANDS; do
    usage_error "$cmd: unknown long option" "try 'cmig-bundle $cmd --help'" "$BUNDLE" "$cmd" --no-such-option
    usage_error "$cmd: unknown short option" "try 'cmig-bundle $cmd --help'" "$BUNDLE" "$cmd" -Z
    expect_contains "$cmd: the message names the program, the command and the option" "$SERR" "cmig-bundle $cmd: invalid option -- 'Z'"
done
run "$BUNDLE" build --no-such-option
expect_contains "an unknown long option is named" "$SERR" "cmig-bundle build: unrecognized option '--no-such-option'"
usage_error "build: --name without its argument" "try 'cmig-bundle build --help'" "$BUNDLE" build --name
usage_error "build: -V without its argument" "try 'cmig-bundle build --help'" "$BUNDLE" build -V
usage_error "verify: --pubkey without its argument" "try 'cmig-bundle verify --help'" "$BUNDLE" verify --pubkey
usage_error "keygen: --output without its argument" "try 'cmig-bundle keygen --help'" "$BUNDLE" keygen --output

# A real key and bundle, so that each check below lacks exactly one thing.
mkdir mig
printf 'CREATE TABLE t (id integer);\n' >mig/1_t.up.sql
run "$BUNDLE" keygen --no-password --output k
[ "$RC" -eq 0 ] && ok "setup: keygen" || not_ok "setup: keygen" "$SERR"
run "$BUNDLE" build mig --name app --version 1.0.0 --key k.key --output app.cmig
[ "$RC" -eq 0 ] && ok "setup: build" || not_ok "setup: build" "$SERR"

usage_error "keygen without --output" "--output PREFIX is required" "$BUNDLE" keygen --no-password
usage_error "keygen with a stray argument" "unexpected argument 'extra'" "$BUNDLE" keygen --no-password -o k2 extra
usage_error "build without DIR" "DIR is required" "$BUNDLE" build --name app --version 1.0.0 --key k.key
usage_error "build without --name" "--name is required" "$BUNDLE" build mig --version 1.0.0 --key k.key
usage_error "build without --version" "--version is required" "$BUNDLE" build mig --name app --key k.key
run "$BUNDLE" build mig --name app --version 1.0.1 --output nokey.cmig
if [ "$RC" -eq 2 ]; then ok "build without a key: exit 2"; else not_ok "build without a key: exit 2" "exit $RC: $SERR"; fi
expect_contains "build without a key: names every way to give one" "$SERR" "--key FILE, or set CMIG_SECRET_KEY_FILE or CMIG_SECRET_KEY"
[ -e nokey.cmig ] && not_ok "build without a key writes nothing" || ok "build without a key writes nothing"
usage_error "build with two directories" "unexpected argument 'other'" "$BUNDLE" build mig other --name app --version 1.0.0 --key k.key
usage_error "build with an unknown --dir-format" "unknown --dir-format 'liquibase'" "$BUNDLE" build mig -n app -V 1.0.0 -k k.key -F liquibase
usage_error "sign without BUNDLE" "exactly one BUNDLE is required" "$BUNDLE" sign --key k.key
usage_error "sign with two bundles" "exactly one BUNDLE is required" "$BUNDLE" sign --key k.key app.cmig app.cmig
run "$BUNDLE" sign app.cmig --signature new.minisig
if [ "$RC" -eq 2 ] && [ ! -e new.minisig ]; then ok "sign without a key: exit 2, nothing written"; else not_ok "sign without a key: exit 2, nothing written" "exit $RC: $SERR"; fi
usage_error "verify without BUNDLE" "exactly one BUNDLE is required" "$BUNDLE" verify --pubkey k.pub
run "$BUNDLE" verify app.cmig
if [ "$RC" -eq 2 ]; then ok "verify without a trusted key: exit 2"; else not_ok "verify without a trusted key: exit 2" "exit $RC: $SERR"; fi
expect_contains "verify without a trusted key: says how to give one" "$SERR" "--pubkey or set CMIG_TRUSTED_KEYS"
usage_error "inspect without BUNDLE" "exactly one BUNDLE is required" "$BUNDLE" inspect
usage_error "inspect with two bundles" "exactly one BUNDLE is required" "$BUNDLE" inspect app.cmig app.cmig
usage_error "diff with one bundle" "OLD.cmig and NEW.cmig are required" "$BUNDLE" diff app.cmig
usage_error "diff with three bundles" "OLD.cmig and NEW.cmig are required" "$BUNDLE" diff app.cmig app.cmig app.cmig

# cmig-run durations: the documented spellings only. strtod used to let
# exponents, hex and "nan" through (found by tests/fuzz/fuzz_config.c).
for d in 1e2 1.5e1s 0x10 nan inf ' 5s' 5x; do
    expect_exit 2 "cmig-run --wait '$d': exit 2" "$B/cmig-run" --wait "$d" status
    expect_contains "cmig-run --wait '$d': refused as a duration" "$OUT" "is not a duration"
done
for d in 250ms 1.5s .5 0.1h 5m 7; do
    OUT=$("$B/cmig-run" --wait "$d" status 2>&1)
    expect_not_contains "cmig-run --wait '$d': a duration" "$OUT" "is not a duration"
done

# cmig-run reads options after the command as well, whatever the
# environment: with POSIXLY_CORRECT set, glibc's getopt used to stop at the
# first word that is not an option, so that "status --wait 5x" was refused
# for its stray '--wait' instead of its duration (found by
# tests/fuzz/fuzz_config.c). "--" still ends the options.
for posix in unset set; do
    if [ "$posix" = set ]; then export POSIXLY_CORRECT=1; else unset POSIXLY_CORRECT; fi
    expect_exit 2 "POSIXLY_CORRECT $posix: cmig-run status --wait 5x: exit 2" "$B/cmig-run" status --wait 5x
    expect_contains "POSIXLY_CORRECT $posix: an option after the command is read as one" "$OUT" \
        "--wait: '5x' is not a duration"
    expect_exit 2 "POSIXLY_CORRECT $posix: a third word: exit 2" "$B/cmig-run" force --wait 1s 3 extra
    expect_contains "POSIXLY_CORRECT $posix: the third word is the unexpected one" "$OUT" \
        "unexpected argument 'extra'"
    expect_exit 2 "POSIXLY_CORRECT $posix: after --, options are words: exit 2" \
        "$B/cmig-run" force 3 -- --wait
    expect_contains "POSIXLY_CORRECT $posix: after --, an option is a word" "$OUT" \
        "unexpected argument '--wait'"
done
unset POSIXLY_CORRECT

# cmig-bundle too: options after the arguments, with POSIXLY_CORRECT unset
# and set ("inspect B --json" used to say "exactly one BUNDLE is required"
# when it was set, taking --json for a second bundle).
for posix in unset set; do
    if [ "$posix" = set ]; then export POSIXLY_CORRECT=1; else unset POSIXLY_CORRECT; fi
    run "$BUNDLE" inspect app.cmig --json
    if [ "$RC" -eq 0 ] && [[ $SOUT == '{"name":"app"'* ]]; then
        ok "POSIXLY_CORRECT $posix: cmig-bundle inspect B --json prints JSON"
    else
        not_ok "POSIXLY_CORRECT $posix: cmig-bundle inspect B --json prints JSON" "exit $RC: $SERR"
    fi
    run "$BUNDLE" build mig --name app --version 1.0.2 --key k.key --output "posix-$posix.cmig" -q
    if [ "$RC" -eq 0 ] && [ -s "posix-$posix.cmig" ]; then
        ok "POSIXLY_CORRECT $posix: cmig-bundle build DIR --name ... reads every option"
    else
        not_ok "POSIXLY_CORRECT $posix: cmig-bundle build DIR --name ... reads every option" \
            "exit $RC: $SERR"
    fi
    usage_error "POSIXLY_CORRECT $posix: after --, an option is an argument" \
        "exactly one BUNDLE is required" "$BUNDLE" inspect app.cmig -- --json
done
unset POSIXLY_CORRECT

# Errors name the program, so that logs of several tools stay readable.
run "$BUNDLE" inspect
expect_contains "errors start with 'cmig-bundle: error:'" "$(head -1 <<<"$SERR")" "cmig-bundle: error:"

exit 0
