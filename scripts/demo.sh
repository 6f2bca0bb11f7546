#!/usr/bin/env bash
# One command on a fresh machine: installs Node >= 22 and pnpm if needed, the dependencies and the
# Kafka jars, then runs the ledger demo (against KAFKA_BROKERS, a `pnpm kafka:up` broker, or a fresh
# local one): two instances, one killed with kill -9 inside a transaction, then the exactly-once check.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
exec node tools/chaos/dist/demo.js
