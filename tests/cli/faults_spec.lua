-- Server faults: the runner's backend terminated at random moments, and the server restarted mid-run (on a server
-- of this spec's own: the shared one serves other specs meanwhile). Each time the database is at a revision
-- boundary and no migration ran twice; with --reconnect 3 the run completes, without it the next run does.
local S = require("support")
local core = require("luamig.core")

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

-- mid_run(psql, dir, name, revs, j) -> true once the runner sleeps on the server in migration j or a later one (its
-- version row at revs[j - 1] or after), false when the run ended first. The fault then lands at a random moment
-- from there on; and as the last migration waits on the server until the fault has happened (HOLD_*), the run is
-- interrupted every time, however fast or loaded the machine.
local function mid_run(psql, dir, name, revs, j)
  local index = { [""] = 0 }
  for k, r in ipairs(revs) do index[r] = k end
  local deadline = core.clock() + 120
  repeat
    if psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()") ~= "0"
      and psql("SELECT count(*) FROM pg_tables WHERE tablename = 'luamig_version'") ~= "0"
      and index[psql("SELECT coalesce(string_agg(version_num, ','), '') FROM luamig_version")] >= j - 1 then
      return true
    end
    if S.finished(dir, name) then return false end
    core.sleep(0.02)
  until core.clock() > deadline
  error("the runner never reached migration " .. j)
end

-- the last migration of each run waits until its fault happened: until the table fired exists (made in the same
-- statement as the termination), or until the server has restarted since the run began (hold.t)
local HOLD_TERMINATE = [[op.execute("DO $$ BEGIN IF to_regclass('fired') IS NULL THEN PERFORM pg_sleep(60); END IF; END $$")]]
local HOLD_RESTART = [[op.execute("DO $$ BEGIN IF pg_postmaster_start_time() < (SELECT t FROM hold) THEN ]]
  .. [[PERFORM pg_sleep(60); END IF; END $$")]]

describe("#postgres server faults", function()
  local dir
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
  end)
  after_each(function() S.rmrf(dir) end)

  it("the runner's backend terminated at random moments 20 times: a revision boundary each time", function()
    local revs = S.counted(dir, 8, { sleep = 0.15, extra = { [8] = HOLD_TERMINATE } })
    local completed, resumed = 0, 0
    for k = 1, 20 do
      local db, url = S.pg_database()
      local function psql(sql) return S.psql(db, sql) end
      local again = k % 2 == 0
      S.spawn(string.format("%s --url %s upgrade head%s", S.q(S.bin), S.q(url), again and " --reconnect 3" or ""),
        dir, "run" .. k)
      assert.is_true(mid_run(psql, dir, "run" .. k, revs, math.random(1, #revs - 2)),
        "run " .. k .. " ended before the termination")
      core.sleep(math.random() * 0.1)
      psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
        .. "pid <> pg_backend_pid() AND backend_type = 'client backend'; CREATE TABLE fired ()")
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
    -- every termination landed mid-run: each run without --reconnect failed, each with it reconnected
    assert.equal(10, completed, "terminations that stopped a run")
    assert.equal(10, resumed, "runs with --reconnect that reconnected")
  end)

  it("the server restarted mid-run 5 times: --reconnect 3 completes the run, nothing ran twice", function()
    local revs = S.counted(dir, 8, { sleep = 0.15, extra = { [8] = HOLD_RESTART } })
    local srv = S.pg_server()
    local ok, err = pcall(function()
      for k = 1, 5 do
        srv.psql("DROP TABLE IF EXISTS hold, applied, luamig_version, luamig_history" .. (function()
          local t = {}
          for i = 1, #revs do t[#t + 1] = ", t_" .. i end
          return table.concat(t)
        end)())
        srv.psql("CREATE TABLE hold AS SELECT clock_timestamp() AS t")
        S.spawn(string.format("%s --url %s upgrade head --reconnect 3", S.q(S.bin), S.q(srv.url)), dir, "restart" .. k)
        assert.is_true(mid_run(srv.psql, dir, "restart" .. k, revs, math.random(1, #revs - 2)),
          "run " .. k .. " ended before the restart")
        core.sleep(math.random() * 0.1)
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
