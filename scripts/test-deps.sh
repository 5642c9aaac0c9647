#!/usr/bin/env bash
# Installs the system packages the tests use when they are missing: PostgreSQL's server
# binaries (tests start their own private server from them), Prometheus (tests start their
# own from /usr/bin/prometheus), curl (the simulated hardware fleet is flashed with it) and
# docker-compose (to check docker-compose.yml; no Docker engine is needed).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/prometheus ] || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo ">> Installing ${need[*]} from Debian's packages"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
