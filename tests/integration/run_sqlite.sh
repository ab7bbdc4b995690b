#!/usr/bin/env bash
# tests/integration/run_sqlite.sh - cmig-run against SQLite database files:
# every scenario of run-scenarios.bash (apply, no-op, --to, failures and
# rollback, non-transactional migrations, down, baseline, dirty state and
# force, golang-migrate adoption, rollback safety, drift, history
# conflicts, refused bundles, --single-transaction, plan, status, logs,
# configuration from the environment, the termination log).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"
source "$(dirname "${BASH_SOURCE[0]}")/run-scenarios.bash"

lr_setup sqlite
cd "$T" || exit 1
run_all_scenarios
