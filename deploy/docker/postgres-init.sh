#!/bin/sh
# One role and one database per service, as deploy/local/postgres.py provisions them.
# Runs on every `docker compose up` and is idempotent: it creates what is missing and
# sets each role's password from the environment, so a changed password applies too.
#
#   SAGA_DATABASES  "db:role:PASSWORD_VARIABLE ..." (written by deploy/docker/generate.py)
#   PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE: the superuser connection (libpq)
#
# Each role owns its database; CONNECT is revoked from PUBLIC, so no role can open
# another service's database.
set -eu

: "${SAGA_DATABASES:?SAGA_DATABASES is not set}"

for entry in $SAGA_DATABASES; do
  db=${entry%%:*}
  rest=${entry#*:}
  role=${rest%%:*}
  password_var=${rest#*:}
  eval "password=\${$password_var:-}"
  if [ -z "$password" ]; then
    echo "postgres-init: $password_var is empty (password of $role)" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 -q -X \
    -v db="$db" -v role="$role" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"role";
SQL
  echo "postgres-init: database $db, role $role"
done
