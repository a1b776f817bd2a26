# Sourced by scripts/test and scripts/bench/run: a throw-away PostgreSQL 15 with its own data directory and unix
# socket in a temp dir (no TCP). pg_start sets PG_SCRATCH_URL (the postgres database on it) and arranges pg_stop on
# exit; it returns non-zero, with the logs on stderr, when the server does not start.
pgbin=/usr/lib/postgresql/15/bin

pg_stop() {
  if [ -n "${pgtmp:-}" ] && [ -f "$pgtmp/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgtmp/data" -m immediate -w stop >/dev/null 2>&1
  fi
  [ -n "${pgtmp:-}" ] && rm -rf "$pgtmp"
  pgtmp=
}

pg_start() {
  pgtmp=$(mktemp -d /tmp/luamig-pg.XXXXXX) # mktemp replaces the Xs with a unique suffix
  chmod 755 "$pgtmp"
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$pgtmp"
    as_pg=(runuser -u postgres --)
  fi
  trap pg_stop EXIT
  trap 'exit 130' INT TERM
  # Trust for everyone but the role luamig_pw, which must log in with its password (the password specs use it).
  if "${as_pg[@]}" "$pgbin/initdb" -D "$pgtmp/data" -A trust -U postgres --no-sync >"$pgtmp/initdb.log" 2>&1 &&
    "${as_pg[@]}" sed -i '1i local all luamig_pw scram-sha-256' "$pgtmp/data/pg_hba.conf" &&
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgtmp/data" -l "$pgtmp/server.log" -w -t 60 \
      -o "-k $pgtmp -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1; then
    PG_SCRATCH_URL="postgresql:///postgres?host=$pgtmp&user=postgres"
    return 0
  fi
  echo "could not start PostgreSQL:" >&2
  cat "$pgtmp/initdb.log" "$pgtmp/server.log" >&2 2>/dev/null
  return 1
}
