#!/usr/bin/env bash
# tests/integration/run_postgres.sh - cmig-run against a private PostgreSQL
# server: every scenario of run-scenarios.bash, each in a database of its
# own. The server logs every connection, which is how the refused-bundle
# scenarios prove that no connection was made.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"
source "$(dirname "${BASH_SOURCE[0]}")/run-scenarios.bash"

lr_setup postgres
if ! pg_start; then
    not_ok "start a PostgreSQL server" "see the messages above"
    exit 1
fi
cd "$T" || exit 1
run_all_scenarios
