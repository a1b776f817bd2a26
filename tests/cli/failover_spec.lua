-- A failover that loses commits: the standby stops receiving WAL, luamig commits two migrations on the primary, the
-- standby is promoted and the primary dies mid-migration. With a multi-host URL (target_session_attrs=read-write)
-- and --reconnect, luamig reaches the new primary, reports the two commits it lacks and applies them again: the run
-- ends at head with every migration applied once on the server that survived. (A server pair of this spec's own.)
local S = require("support")

local REVS = { "f00100000001", "f00200000002", "f00300000003", "f00400000004" }

describe("#postgres a failover to a standby that lacks what the primary committed", function()
  local dir, primary, standby
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
    for i, rev in ipairs(REVS) do
      local up = {}
      if i == 1 then up[#up + 1] = '  op.execute("CREATE TABLE applied (rev TEXT NOT NULL)")' end
      -- the third one runs long where the table slow exists (made on the primary after the standby stopped
      -- streaming): the primary dies while it does, and on the new primary it is quick
      if i == 3 then
        up[#up + 1] = [[  op.execute("DO $$ BEGIN IF to_regclass('slow') IS NOT NULL THEN PERFORM pg_sleep(120); END IF; END $$")]]
      end
      up[#up + 1] = string.format([[  op.execute("INSERT INTO applied (rev) VALUES ('%s')")]], rev)
      S.migration(dir .. "/versions", { rev = rev, down = REVS[i - 1], msg = "step " .. i, up = table.concat(up, "\n") })
    end
    primary = S.pg_server()
    standby = primary.standby()
  end)
  after_each(function()
    primary.stop()
    S.rmrf(dir)
  end)

  it("--reconnect finds the promoted standby, reports the lost commits and applies them again", function()
    standby.caught_up()
    standby.detach() -- from here on, what the primary commits is lost in the failover
    primary.psql("CREATE TABLE slow ()")
    local url = string.format("postgresql:///postgres?host=%s,%s&user=postgres&target_session_attrs=read-write",
      primary.dir, standby.dir)
    S.spawn(string.format("%s --url %s upgrade head --reconnect 6", S.q(S.bin), S.q(url)), dir, "run")
    local running
    S.wait_until("the runner to sleep in its third migration", function()
      running = primary.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") == "1"
      return running or S.finished(dir, "run") ~= nil
    end, 120)
    assert.is_true(running, S.read(dir .. "/run.out"))
    assert.equal(REVS[2], primary.psql("SELECT version_num FROM luamig_version"))
    assert.equal("0", standby.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'applied'"))
    standby.promote()
    primary.kill()
    local rc = S.finished(dir, "run", 300)
    local out = S.read(dir .. "/run.out") or ""
    assert.equal(0, rc, out)
    for i = 1, 2 do
      assert.truthy(out:find("luamig: warning: " .. REVS[i] .. " was committed before the connection was lost, but the "
        .. "server luamig reconnected to does not have it (a failover lost it): applying it again", 1, true), out)
    end
    assert.falsy(out:find(REVS[3] .. " was committed", 1, true), out)
    -- the new primary: at head, each migration applied once, its history the four upgrades
    assert.equal(REVS[4], standby.psql("SELECT version_num FROM luamig_version"))
    assert.equal("4 4", standby.psql("SELECT count(*) || ' ' || count(DISTINCT rev) FROM applied"))
    assert.equal(table.concat(REVS, ","), standby.psql("SELECT string_agg(revision, ',' ORDER BY id) FROM luamig_history "
      .. "WHERE direction = 'upgrade' AND status = 'applied'"))
  end)
end)
