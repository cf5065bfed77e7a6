#!/usr/bin/env bash
# Installs what the tests and the local stack need from Debian, when it is missing:
# the PostgreSQL server, pg_cron (the runbook's fallback scheduler is tested with
# it), pgTAP with pg_prove (the database tests in Supabase's format), libfaketime
# (the expiry tests move the database's clock) and venv support. Does nothing when all is there. As root it uses apt;
# otherwise it says what to install and fails.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
# pg_cron for the server major version that is (or is about to be) installed.
major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
major=${major:-15}
compgen -G "/usr/lib/postgresql/$major/lib/pg_cron.so" >/dev/null || missing+=("postgresql-$major-cron")
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
