-- Server faults: the runner's backend terminated at random moments, and the server restarted mid-run (on a server
-- of this spec's own: the shared one serves other specs meanwhile). Each time the database is at a revision
-- boundary and no migration ran twice; with --reconnect 3 the run completes, without it the next run does.
local S = require("support")
local core = require("luamig.core")

local PGBIN = "/usr/lib/postgresql/15/bin"

-- boundary(db, revs, psql) -> k: the database is at revs[k] (0: base) with exactly the first k migrations' tables
-- and counting rows; fails the test otherwise
local function boundary(psql, revs, what)
  local has = psql("SELECT count(*) FROM pg_tables WHERE tablename = 'applied'") ~= "0"
  local rows = has and tonumber(psql("SELECT count(*) FROM applied")) or 0
  local distinct = has and tonumber(psql("SELECT count(DISTINCT rev) FROM applied")) or 0
  assert.equal(rows, distinct, what .. ": a migration ran twice")
  local tables = tonumber(psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'"))
  assert.equal(rows, tables, what .. ": the tables are not those of the migrations counted")
  local v = psql("SELECT count(*) FROM pg_tables WHERE tablename = 'luamig_version'") ~= "0"
    and psql("SELECT coalesce(string_agg(version_num, ','), '') FROM luamig_version") or ""
  assert.equal(rows > 0 and revs[rows] or "", v, what .. ": the version row is not the last migration counted")
  return rows
end

-- own_server() -> { url, psql(sql), restart(), stop() }: a PostgreSQL of this spec's own on a unix socket
local function own_server()
  local dir = S.tmpdir()
  local as = ""
  local _, uid = S.sh("id -u")
  if uid:match("^0") then
    os.execute("chown postgres:postgres " .. S.q(dir))
    as = "runuser -u postgres -- "
  end
  local ok = os.execute(S.clean(string.format("%s%s/initdb -D %s/data -A trust -U postgres --no-sync >%s/initdb.log 2>&1 "
    .. "&& %s%s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \"-k %s -c listen_addresses='' -c fsync=off\" start "
    .. ">/dev/null 2>&1", as, PGBIN, dir, dir, as, PGBIN, dir, dir, dir)))
  assert(ok, "could not start a server of this spec's own: " .. (S.read(dir .. "/server.log") or "")
    .. (S.read(dir .. "/initdb.log") or ""))
  local srv = { url = string.format("postgresql:///postgres?host=%s&user=postgres", dir) }
  function srv.psql(sql)
    local code, out = S.sh(string.format("psql -X -q -h %s -U postgres -d postgres -v ON_ERROR_STOP=1 -Atc %s",
      S.q(dir), S.q(sql)))
    assert(code == 0, "psql failed: " .. out)
    return (out:gsub("%s+$", ""))
  end
  function srv.restart()
    assert(os.execute(S.clean(string.format("%s%s/pg_ctl -D %s/data -m fast -w -t 60 restart -l %s/server.log "
      .. "-o \"-k %s -c listen_addresses='' -c fsync=off\" >/dev/null 2>&1", as, PGBIN, dir, dir, dir))))
  end
  function srv.stop()
    os.execute(S.clean(string.format("%s%s/pg_ctl -D %s/data -m immediate -w stop >/dev/null 2>&1", as, PGBIN, dir)))
    S.rmrf(dir)
  end
  return srv
end

local function wait_for_sleep(psql, dir, name)
  for _ = 1, 1200 do
    if psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'") ~= "0" then
      return true
    end
    if S.finished(dir, name) then return false end
    core.sleep(0.02)
  end
  error("the runner never reached a migration")
end

describe("#postgres server faults", function()
  local dir
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
  end)
  after_each(function() S.rmrf(dir) end)

  it("the runner's backend terminated at random moments 20 times: a revision boundary each time", function()
    local revs = S.counted(dir, 8, { sleep = 0.05 })
    local completed, resumed = 0, 0
    for k = 1, 20 do
      local db, url = S.pg_database()
      local function psql(sql) return S.psql(db, sql) end
      local again = k % 2 == 0
      S.spawn(string.format("%s --url %s upgrade head%s", S.q(S.bin), S.q(url), again and " --reconnect 3" or ""),
        dir, "run" .. k)
      if wait_for_sleep(psql, dir, "run" .. k) then
        core.sleep(math.random() * 0.4)
        psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
          .. "pid <> pg_backend_pid() AND backend_type = 'client backend'")
      end
      local rc = S.finished(dir, "run" .. k, 60)
      local out = S.read(dir .. "/run" .. k .. ".out") or ""
      if again then
        assert.equal(0, rc, out)
        assert.equal(#revs, boundary(psql, revs, "terminate " .. k))
        if out:find("reconnecting in 0.5 s (1 of 3)", 1, true) then resumed = resumed + 1 end
      else
        local at = boundary(psql, revs, "terminate " .. k)
        if rc ~= 0 then
          assert.equal(1, rc, out)
          assert.truthy(out:find("\nluamig: ") or out:find("^luamig: "), out)
          local r = S.run("--url " .. S.q(url) .. " upgrade head", { cwd = dir })
          assert.equal(0, r.code, r.err)
          assert.is_true(at < #revs)
          completed = completed + 1
        end
        assert.equal(#revs, boundary(psql, revs, "terminate " .. k .. ", then a run"))
      end
      S.pg_drop(db)
    end
    -- the terminations did land mid-run: most runs without --reconnect failed, most with it reconnected
    assert.is_true(completed >= 5, "only " .. completed .. " of 10 terminations stopped a run")
    assert.is_true(resumed >= 5, "only " .. resumed .. " of 10 runs with --reconnect reconnected")
  end)

  it("the server restarted mid-run 5 times: --reconnect 3 completes the run, nothing ran twice", function()
    local revs = S.counted(dir, 8, { sleep = 0.1 })
    local srv = own_server()
    local ok, err = pcall(function()
      for k = 1, 5 do
        srv.psql("DROP TABLE IF EXISTS applied, luamig_version, luamig_history" .. (function()
          local t = {}
          for i = 1, #revs do t[#t + 1] = ", t_" .. i end
          return table.concat(t)
        end)())
        S.spawn(string.format("%s --url %s upgrade head --reconnect 3", S.q(S.bin), S.q(srv.url)), dir, "restart" .. k)
        assert.is_true(wait_for_sleep(srv.psql, dir, "restart" .. k), "run " .. k .. " ended before the restart")
        core.sleep(math.random() * 0.3)
        srv.restart()
        local rc = S.finished(dir, "restart" .. k, 90)
        local out = S.read(dir .. "/restart" .. k .. ".out") or ""
        assert.equal(0, rc, out)
        assert.truthy(out:find("reconnecting in", 1, true), out)
        assert.equal(#revs, boundary(srv.psql, revs, "restart " .. k))
      end
    end)
    srv.stop()
    assert(ok, err)
  end)
end)
