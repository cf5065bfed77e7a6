#!/usr/bin/env bash
# Installs what the tests and the local stack need from Debian, when it is missing:
# Node.js and npm (the Supabase CLI and PostgreSQL 17 come from npm, package.json);
# PostgreSQL 15 with pg_cron (the runbook's fallback scheduler is tested with it)
# and plpgsql_check (`supabase db lint`), which have no PostgreSQL 17 build here,
# and its pg_dump (supabase/schema.sql); pgTAP with pg_prove (the database tests
# in Supabase's format; its SQL also goes into PostgreSQL 17); libfaketime (the
# expiry tests move the database's clock) and venv support. Does nothing when all
# is there. As root it uses apt; otherwise it says what to install and fails.
set -euo pipefail

missing=()
command -v npm >/dev/null || missing+=(nodejs npm)
major=15
[ -x "/usr/lib/postgresql/$major/bin/initdb" ] || missing+=("postgresql-$major")
[ -e "/usr/lib/postgresql/$major/lib/pg_cron.so" ] || missing+=("postgresql-$major-cron")
[ -e "/usr/lib/postgresql/$major/lib/plpgsql_check.so" ] || compgen -G "/usr/lib/postgresql/$major/lib/plpgsql_check*.so" >/dev/null || missing+=("postgresql-$major-plpgsql-check")
# pgTAP and pg_prove: supabase/tests/database runs as `supabase test db` would run it.
[ -e "/usr/share/postgresql/$major/extension/pgtap.control" ] || missing+=("postgresql-$major-pgtap")
command -v pg_prove >/dev/null || missing+=(libtap-parser-sourcehandler-pgtap-perl)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || missing+=(libfaketime)
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "Installing from Debian: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
