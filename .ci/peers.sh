#!/usr/bin/env bash
# Debian packages for the real-peer interop tests: swaks, curl, and Postfix's smtp-source /
# smtp-sink (only those tools are used; the Postfix mail system is never started);
# Chromium for the notebook rendering test; PostgreSQL for the shared delivery queue.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
# swaks speaks TLS (STARTTLS and --tls-on-connect) only with these Perl modules
perl -MNet::SSLeay -MIO::Socket::SSL -e1 2>/dev/null || need+=(libnet-ssleay-perl libio-socket-ssl-perl)
command -v curl >/dev/null || need+=(curl)
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || need+=(postfix)
# a throw-away PostgreSQL server for the delivery queue's tests (tests/pgserver.py)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# headless Chromium loads a rendered notebook (tests/test_notebooks_render.py)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Only its initdb/pg_ctl are used, on a temporary directory: the packaged cluster stays off.
if command -v pg_ctlcluster >/dev/null; then pg_ctlcluster --force 15 main stop >/dev/null 2>&1 || true; fi
# Make sure the Postfix mail system is not running: we use only its test tools.
if command -v postfix >/dev/null; then postfix stop >/dev/null 2>&1 || true; fi
