# tests/integration/lib-mongo.sh - private MongoDB-wire servers for one
# test suite (sourced, after tests/lib.sh).
#
# No MongoDB server can be installed from Debian, so the suite installs two
# third-party servers from the npm registry, pinned by version and checked
# against known hashes, into a cache next to the build, and starts them on
# loopback:
#   jongodb 0.1.6   a native binary; history, locks, data migrations (it
#                   enforces unique _ids and indexes, has transactions as a
#                   one-node replica set, but no create/drop/rename)
#   CongoDB         the server in @push.rocks/smartmongo 2.2.0 (Node); DDL
#                   migrations (create, drop, renameCollection, collMod)
#
#   mongo_start           starts both; exports CMIG_TEST_MONGO_URL (jongodb,
#                         replica-set profile) and CMIG_TEST_CONGO_URL. When
#                         CMIG_TEST_MONGO_URL is already set (a real MongoDB),
#                         both point at that server and nothing is installed.
#   mongo_start_jongodb   the same for jongodb alone (CMIG_TEST_MONGO_URL), for
#                         suites that need no DDL: nothing of CongoDB is
#                         installed or started
#   mongo_url BASE DB     BASE's URL with database DB (BASE: a *_URL above)
#   mongo_cmd URL DB JSON...   runs commands, one reply per line (mongo-cmd)
#   mongo_free_port       a loopback port nothing listens on
#   jongodb_start PORT    another jongodb on PORT (for --wait tests); sets
#                         JONGODB_PID; jongodb_stop PID
#   mongo_real            true when the servers are a real MongoDB
#   mongo_stop            stops what was started; runs at exit
#
# MONGO_CACHE (default $B/tests/mongo-cache) holds the installed servers; a
# second run installs nothing.

JONGODB_VERSION=0.1.6
JONGODB_PKG=@jongodb/memory-server-bin-linux-x64-gnu@$JONGODB_VERSION
JONGODB_SHA256=c53888f078d7f5f38d5386685044cf54dd94aaf831ebc09c76f1d4fbc321b625
CONGO_PKG=@push.rocks/smartmongo@2.2.0
CONGO_SHA1=8e8d6fe2de716cc16385447467cc47ce35e10af2
# What congodb/ imports, and what those pull in, at exact versions.
CONGO_DEPS="@push.rocks/smartfs@1.5.0 @push.rocks/smartpath@6.0.0 @push.rocks/smartpromise@4.2.3
@push.rocks/smartrx@3.0.10 @push.rocks/smartrust@1.3.2 bson@6.10.4 mingo@7.2.7 rxjs@7.8.2
tslib@2.9.1"

MONGO_CACHE=${MONGO_CACHE:-$B/tests/mongo-cache}
MONGO_CMD_BIN=$B/tests/mongo-cmd
MONGO_PIDS=
JONGODB_PID=
MONGO_REAL=0
MONGO_LOGDIR=

mongo_real() {
    [ "$MONGO_REAL" = 1 ]
}

_mongo_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

mongo_free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        _mongo_port_busy "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# _mongo_wait_port PORT PID SECONDS: until PORT accepts connections.
_mongo_wait_port() {
    local i
    for i in $(seq 1 $(($3 * 20))); do
        _mongo_port_busy "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Publishes directory $1 as $2, unless another suite was quicker.
_mongo_publish() {
    mv -T "$1" "$2" 2>/dev/null || rm -rf "$1"
    [ -e "$2" ]
}

_mongo_install_jongodb() {
    local dir=$MONGO_CACHE/jongodb-$JONGODB_VERSION tmp tgz
    if [ -x "$dir/jongodb" ] &&
        [ "$(sha256sum "$dir/jongodb" | cut -c1-64)" = "$JONGODB_SHA256" ]; then
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$MONGO_CACHE" || return 1
    tmp=$(mktemp -d "$MONGO_CACHE/.jongodb.XXXXXX") || return 1
    if ! (cd "$tmp" && npm pack --silent "$JONGODB_PKG" >pack.log 2>&1); then
        echo "lib-mongo: npm pack $JONGODB_PKG failed:" >&2
        tail -5 "$tmp/pack.log" >&2
        rm -rf "$tmp"
        return 1
    fi
    tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -1)
    tar -xzf "$tgz" -C "$tmp" package/bin/jongodb || { rm -rf "$tmp"; return 1; }
    if [ "$(sha256sum "$tmp/package/bin/jongodb" | cut -c1-64)" != "$JONGODB_SHA256" ]; then
        echo "lib-mongo: the jongodb binary does not have the pinned SHA-256" >&2
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$tmp/out"
    mv "$tmp/package/bin/jongodb" "$tmp/out/jongodb" && chmod 755 "$tmp/out/jongodb"
    _mongo_publish "$tmp/out" "$dir"
    rm -rf "$tmp"
    [ -x "$dir/jongodb" ]
}

# CongoDB: `npm install` of the whole package fails (a transitive version is
# missing from the registry, and it pulls a mongod downloader), so only its
# congodb/ directory is taken, next to the modules it imports.
_mongo_install_congo() {
    local dir=$MONGO_CACHE/congodb-2.2.0 tmp tgz
    [ -f "$dir/.complete" ] && return 0
    rm -rf "$dir"
    mkdir -p "$MONGO_CACHE" || return 1
    tmp=$(mktemp -d "$MONGO_CACHE/.congodb.XXXXXX") || return 1
    if ! (cd "$tmp" && npm pack --silent "$CONGO_PKG" >pack.log 2>&1); then
        echo "lib-mongo: npm pack $CONGO_PKG failed:" >&2
        tail -5 "$tmp/pack.log" >&2
        rm -rf "$tmp"
        return 1
    fi
    tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -1)
    if [ "$(sha1sum "$tgz" | cut -c1-40)" != "$CONGO_SHA1" ]; then
        echo "lib-mongo: $CONGO_PKG does not have the pinned shasum" >&2
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$tmp/out" "$tmp/pkg"
    tar -xzf "$tgz" -C "$tmp/pkg" package/dist_ts/congodb || { rm -rf "$tmp"; return 1; }
    mv "$tmp/pkg/package/dist_ts/congodb" "$tmp/out/congodb"
    printf '{"name":"cmig-test-congodb","private":true,"type":"module"}\n' >"$tmp/out/package.json"
    cat >"$tmp/out/start.mjs" <<'EOF'
// Starts CongoDB on 127.0.0.1:PORT (argv[2]) and says so on stdout.
import { CongoServer } from './congodb/index.js';
const server = new CongoServer({ host: '127.0.0.1', port: Number(process.argv[2]) });
await server.start();
console.log('listening ' + server.port);
for (const sig of ['SIGTERM', 'SIGINT'])
    process.on(sig, () => { server.stop().finally(() => process.exit(0)); });
EOF
    # shellcheck disable=SC2086
    if ! (cd "$tmp/out" && npm install --no-save --ignore-scripts --no-audit --no-fund \
        --loglevel=error $CONGO_DEPS >"$tmp/install.log" 2>&1); then
        echo "lib-mongo: npm install of CongoDB's modules failed:" >&2
        tail -5 "$tmp/install.log" >&2
        rm -rf "$tmp"
        return 1
    fi
    touch "$tmp/out/.complete"
    _mongo_publish "$tmp/out" "$dir"
    rm -rf "$tmp"
    [ -f "$dir/.complete" ]
}

# jongodb_start PORT: returns once the server accepts connections.
jongodb_start() {
    local port=$1 pid
    JONGODB_PID=
    "$MONGO_CACHE/jongodb-$JONGODB_VERSION/jongodb" --host=127.0.0.1 --port="$port" \
        --replica-set-name=rs0 --topology-profile=singlenodereplicaset \
        >"$MONGO_LOGDIR/jongodb-$port.log" 2>&1 &
    pid=$!
    MONGO_PIDS="$MONGO_PIDS $pid"
    if ! _mongo_wait_port "$port" "$pid" 10; then
        kill -9 "$pid" 2>/dev/null
        return 1
    fi
    JONGODB_PID=$pid
}

jongodb_stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

_congo_start() {
    local port=$1 pid i
    node "$MONGO_CACHE/congodb-2.2.0/start.mjs" "$port" >"$MONGO_LOGDIR/congodb.log" 2>&1 &
    pid=$!
    MONGO_PIDS="$MONGO_PIDS $pid"
    for i in $(seq 1 300); do
        grep -q '^listening' "$MONGO_LOGDIR/congodb.log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null
    echo "lib-mongo: CongoDB did not start:" >&2
    tail -5 "$MONGO_LOGDIR/congodb.log" >&2
    return 1
}

# _mongo_prepare WITH_CONGO: a real server's URL is taken as is (returns 2);
# else the tools are checked and the servers installed.
_mongo_prepare() {
    local tool
    if [ -n "${CMIG_TEST_MONGO_URL:-}" ]; then
        MONGO_REAL=1
        export CMIG_TEST_MONGO_URL
        export CMIG_TEST_CONGO_URL=$CMIG_TEST_MONGO_URL
        return 2
    fi
    for tool in npm node sha256sum sha1sum; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "lib-mongo: $tool not found (the test servers come from npm)" >&2
            return 1
        fi
    done
    MONGO_LOGDIR=$(mktemp -d /tmp/cmig-mongo.XXXXXX) || return 1
    _mongo_install_trap
    _mongo_install_jongodb || return 1
    if [ "$1" = 1 ]; then
        _mongo_install_congo || return 1
    fi
}

_mongo_start_jongodb_server() {
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(mongo_free_port) || break
        if jongodb_start "$port"; then
            export CMIG_TEST_MONGO_URL="mongodb://127.0.0.1:$port/test?replicaSet=rs0"
            return 0
        fi
    done
    echo "lib-mongo: jongodb did not start" >&2
    return 1
}

mongo_start_jongodb() {
    _mongo_prepare 0
    case $? in 0) ;; 2) return 0 ;; *) return 1 ;; esac
    _mongo_start_jongodb_server
}

mongo_start() {
    local port attempt
    _mongo_prepare 1
    case $? in 0) ;; 2) return 0 ;; *) return 1 ;; esac
    _mongo_start_jongodb_server || return 1
    for attempt in 1 2 3; do
        port=$(mongo_free_port) || break
        if _congo_start "$port"; then
            export CMIG_TEST_CONGO_URL="mongodb://127.0.0.1:$port/test"
            return 0
        fi
    done
    return 1
}

# mongo_url BASE_URL DB: the same server and options, database DB.
mongo_url() {
    local base=$1 db=$2 head tail=
    case $base in *\?*) tail="?${base#*\?}"; base=${base%%\?*} ;; esac
    head=${base#mongodb://}
    head=${head#mongodb+srv://}
    case $head in */*) base=${base%/*} ;; esac
    echo "$base/$db$tail"
}

# MONGOC_DISABLE_SHM: no counter file in /dev/shm. libmongoc reads it as it
# is loaded, before main, so it must come from the environment. Only here:
# cmig-run is run without it, to test that it sets it itself.
mongo_cmd() {
    MONGOC_DISABLE_SHM=1 "$MONGO_CMD_BIN" "$@"
}

mongo_stop() {
    local pid
    for pid in $MONGO_PIDS; do
        kill "$pid" 2>/dev/null
    done
    for pid in $MONGO_PIDS; do
        wait "$pid" 2>/dev/null
    done
    MONGO_PIDS=
    [ -n "$MONGO_LOGDIR" ] && rm -rf "$MONGO_LOGDIR"
    MONGO_LOGDIR=
}

# Chains mongo_stop in front of whatever EXIT trap is set (tests/lib.sh
# removes its temp dir there).
_mongo_install_trap() {
    local prev
    prev=$(trap -p EXIT)
    if [ -n "$prev" ]; then
        eval "set -- $prev"
        trap "mongo_stop; $3" EXIT
    else
        trap mongo_stop EXIT
    fi
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
