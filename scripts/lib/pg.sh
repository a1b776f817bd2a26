# Sourced by scripts/test and scripts/bench/run: a throw-away PostgreSQL 15 with its own data directory and unix
# socket in a temp dir (no TCP). pg_start sets PG_SCRATCH_URL (the postgres database on it) and arranges pg_stop on
# exit; it returns non-zero, with the logs on stderr, when the server does not start.
pgbin=/usr/lib/postgresql/15/bin

pg_stop() {
  if [ -n "${pgtmp:-}" ] && [ -f "$pgtmp/bouncer/pgbouncer.pid" ]; then
    kill "$(cat "$pgtmp/bouncer/pgbouncer.pid")" 2>/dev/null
  fi
  if [ -n "${pgtmp:-}" ] && [ -f "$pgtmp/standby/postmaster.pid" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgtmp/standby" -m immediate -w stop >/dev/null 2>&1
  fi
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

# pg_start_extras (after pg_start): PgBouncer in transaction mode in front of the server (default_pool_size = 2, a
# unix socket in $pgtmp/bouncer, no TCP) and a streaming standby of it (pg_basebackup -R, its own data directory,
# socket port 5433 in $pgtmp). The standby streams through a replication slot: every DROP DATABASE forces a
# checkpoint, and without the slot a standby that lags past one finds its next WAL segment removed and never
# catches up again. Sets PG_BOUNCER_URL and PG_STANDBY_URL; pg_stop stops both. Non-zero, with the logs
# on stderr, when either does not start.
pg_start_extras() {
  local b=$pgtmp/bouncer
  mkdir -p "$b" && printf '"postgres" ""\n' >"$b/users.txt" && cat >"$b/pgbouncer.ini" <<INI
[databases]
* = host=$pgtmp port=5432
[pgbouncer]
listen_addr =
listen_port = 6432
unix_socket_dir = $b
auth_type = trust
auth_file = $b/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 400
logfile = $b/pgbouncer.log
pidfile = $b/pgbouncer.pid
INI
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$b"
  if ! "${as_pg[@]}" /usr/sbin/pgbouncer -d -q "$b/pgbouncer.ini" >"$b/start.log" 2>&1; then
    echo "could not start PgBouncer:" >&2
    cat "$b/start.log" "$b/pgbouncer.log" >&2 2>/dev/null
    return 1
  fi
  local i=0
  while [ ! -S "$b/.s.PGSQL.6432" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  PG_BOUNCER_URL="postgresql:///postgres?host=$b&port=6432&user=postgres"
  if "${as_pg[@]}" "$pgbin/pg_basebackup" -h "$pgtmp" -U postgres -D "$pgtmp/standby" -R -X stream -C -S luamig_standby \
      >"$pgtmp/basebackup.log" 2>&1 &&
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgtmp/standby" -l "$pgtmp/standby.log" -w -t 60 \
      -o "-k $pgtmp -p 5433 -c listen_addresses='' -c fsync=off -c hot_standby=on" start >/dev/null 2>&1; then
    PG_STANDBY_URL="postgresql:///postgres?host=$pgtmp&port=5433&user=postgres"
    return 0
  fi
  echo "could not start the standby:" >&2
  cat "$pgtmp/basebackup.log" "$pgtmp/standby.log" >&2 2>/dev/null
  return 1
}
