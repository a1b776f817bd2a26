-- The lease (lock = lease): a holder killed mid-run is taken over once its lease runs out, and a holder that was
-- paused past its lease aborts at its next version-row change instead of applying; both checked through the
-- migrations' own counting table. Short lease times keep it quick: lease_ttl = 3 and lease_heartbeat = 0.5, six
-- renewals per TTL, a margin for a loaded machine.
local S = require("support")
local core = require("luamig.core")

local INI = "[luamig]\nscript_location = .\nlock = lease\nlease_ttl = 3\nlease_heartbeat = 0.5\nlock_timeout = 60\n"

describe("#postgres the migration lease", function()
  local dir, db, url
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", INI)
    db, url = S.pg_database()
  end)
  after_each(function()
    S.pg_drop(db)
    S.rmrf(dir)
  end)

  it("a holder SIGKILLed mid-run 10 times: the next runner takes over, no migration is applied twice", function()
    local revs = S.counted(dir, 12, { sleep = 0.1 })
    local mid = 0
    for kill = 1, 10 do
      local kdb, kurl = S.pg_database()
      local pid = S.spawn(string.format("%s --url %s upgrade head", S.q(S.bin), S.q(kurl)), dir, "holder" .. kill)
      -- kill it once it holds the lease and runs a migration
      S.wait_until("the holder to run a migration", function()
        return S.psql(kdb, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
          .. "query LIKE 'SELECT pg_sleep%' AND state = 'active'") ~= "0" or S.finished(dir, "holder" .. kill) ~= nil
      end, 60)
      core.sleep(math.random() * 0.3)
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      if S.finished(dir, "holder" .. kill, 30) ~= 0 then mid = mid + 1 end
      -- its lease is left behind; the next runner waits it out and completes the run
      local r = S.run("--url " .. S.q(kurl) .. " upgrade head", { cwd = dir })
      assert.equal(0, r.code, r.err)
      local rows, distinct = S.applied_counts(kdb)
      assert.equal(#revs, rows, "kill " .. kill .. ": a migration was applied twice or not at all")
      assert.equal(#revs, distinct)
      assert.equal(revs[#revs], S.pg_versions(kdb))
      assert.equal("0", S.psql(kdb, "SELECT count(*) FROM luamig_lock"))
      S.pg_drop(kdb)
    end
    assert.is_true(mid >= 8, "only " .. mid .. " of 10 kills landed before the run's end")
  end)

  it("a holder paused past its lease aborts at its next version-row change; the runner that took over applies", function()
    -- the second migration only counts and sleeps: nothing in it conflicts with the runner that takes over, so
    -- the paused holder gets to its version-row change, where the fence stops it
    S.counted(dir, 1)
    S.migration(dir .. "/versions", { rev = "c00200000002", down = "c00100000001", up = table.concat({
      [[  op.execute("INSERT INTO applied (rev) VALUES ('c00200000002')")]],
      '  op.execute("SELECT pg_sleep(1.5)")' }, "\n") })
    S.migration(dir .. "/versions", { rev = "c00300000003", down = "c00200000002",
      up = [[  op.execute("INSERT INTO applied (rev) VALUES ('c00300000003')")]] })
    local pid = S.spawn(string.format("%s --url %s upgrade head", S.q(S.bin), S.q(url)), dir, "paused")
    S.wait_until("the holder to sleep in its second migration", function()
      return S.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
        .. "query LIKE 'SELECT pg_sleep%' AND state = 'active'") ~= "0"
    end, 60)
    os.execute("kill -STOP " .. pid)
    -- (the lease runs out 3 s after its last renewal; the runner below waits for that)
    local r = S.run("--url " .. S.q(url) .. " upgrade head", { cwd = dir })
    os.execute("kill -CONT " .. pid)
    assert.equal(0, r.code, r.err)
    local rc = S.finished(dir, "paused", 60)
    local out = S.read(dir .. "/paused.out")
    assert.equal(1, rc, out)
    assert.truthy(out:find("luamig: upgrade c00100000001 -> c00200000002 failed", 1, true), out)
    assert.truthy(out:find("the migration lease on postgresql:///" .. db .. "?host=", 1, true), out)
    assert.truthy(out:find("lapsed", 1, true), out)
    local rows, distinct = S.applied_counts(db)
    assert.equal(3, rows)
    assert.equal(3, distinct)
    assert.equal("c00300000003", S.pg_versions(db))
  end)
end)
