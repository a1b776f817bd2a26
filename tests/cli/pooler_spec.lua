-- Behind PgBouncer in transaction mode (scripts/test starts one in front of the test server, default_pool_size = 2):
-- lock = auto picks the lease, many runners at once apply every migration exactly once and leave no lock behind;
-- session mode's lock, which the pooler does not keep, is reported when its unlock answers false.
local S = require("support")

local function advisory_locks(db)
  return S.psql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    .. "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
end

describe("#postgres behind a transaction pooler", function()
  local dir, db
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
  end)
  after_each(function()
    if db then S.pg_drop(db) end
    S.rmrf(dir)
  end)

  it("16 runners at once x 5 rounds: every migration applied once, all exit 0, the lease chosen, nothing left held", function()
    local revs = S.counted(dir, 40)
    for round = 1, 5 do
      local url
      db, url = S.pg_database()
      local via = S.pg_url_via("LUAMIG_TEST_PGBOUNCER_URL", db)
      local cmd = {}
      for i = 1, 16 do
        cmd[#cmd + 1] = string.format("(%s -v --url %s upgrade head > out.%d 2>&1; echo $? > rc.%d) &", S.q(S.bin),
          S.q(via), i, i)
      end
      cmd[#cmd + 1] = "wait"
      assert(os.execute(S.clean("cd " .. S.q(dir) .. " && { " .. table.concat(cmd, " ") .. "; }")))
      for i = 1, 16 do
        local out = S.read(dir .. "/out." .. i)
        assert.equal("0", (S.read(dir .. "/rc." .. i) or ""):match("%d+"), "round " .. round .. " runner " .. i .. ": " .. out)
        assert.truthy(out:find("lock: lease (a transaction pooler: the connection's backend pid", 1, true), out)
      end
      local rows, distinct = S.applied_counts(db)
      assert.equal(40, rows)
      assert.equal(40, distinct)
      assert.equal(revs[40], S.pg_versions(db))
      assert.equal("0", advisory_locks(db))
      assert.equal("0", S.psql(db, "SELECT count(*) FROM luamig_lock WHERE expires_at > clock_timestamp()"))
      S.pg_drop(db)
      db = nil
      local _ = url
    end
  end)

  it("transaction mode: 8 runners at once, one migration outside a transaction under the lease meanwhile", function()
    local revs = S.counted(dir, 6)
    S.migration(dir .. "/versions", { rev = "d00700000007", down = revs[6], transactional = false,
      up = [[  op.execute("INSERT INTO applied (rev) VALUES ('d00700000007')")]] })
    S.migration(dir .. "/versions", { rev = "d00800000008", down = "d00700000007",
      up = [[  op.execute("INSERT INTO applied (rev) VALUES ('d00800000008')")]] })
    local url
    db, url = S.pg_database()
    local via = S.pg_url_via("LUAMIG_TEST_PGBOUNCER_URL", db)
    local cmd = {}
    for i = 1, 8 do
      cmd[#cmd + 1] = string.format("(%s --lock transaction --url %s upgrade head > tx.%d 2>&1; echo $? > txrc.%d) &",
        S.q(S.bin), S.q(via), i, i)
    end
    cmd[#cmd + 1] = "wait"
    assert(os.execute(S.clean("cd " .. S.q(dir) .. " && { " .. table.concat(cmd, " ") .. "; }")))
    for i = 1, 8 do
      assert.equal("0", (S.read(dir .. "/txrc." .. i) or ""):match("%d+"), S.read(dir .. "/tx." .. i))
    end
    local rows, distinct = S.applied_counts(db)
    assert.equal(8, rows)
    assert.equal(8, distinct)
    assert.equal("d00800000008", S.pg_versions(db))
    assert.equal("0", advisory_locks(db))
    assert.equal("0", S.psql(db, "SELECT count(*) FROM luamig_lock"))
    assert.equal("0", S.psql(db, "SELECT count(*) FROM luamig_history WHERE status <> 'applied'"))
    local _ = url
  end)

  it("session mode: the unlock that answers false is reported as a warning", function()
    local url
    db, url = S.pg_database()
    local via = S.pg_url_via("LUAMIG_TEST_PGBOUNCER_URL", db)
    -- the migration gives up every advisory lock of the server connection it runs on: the one the pooler gives
    -- this client again (it hands out its most recently used connection), so the lock is gone at the unlock
    S.migration(dir .. "/versions", { rev = "aaaa00000001", up = '  op.execute("SELECT pg_advisory_unlock_all()")' })
    local r = S.run("-v --lock session --url " .. S.q(via) .. " upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("lock: session (lock = session)", 1, true), r.err)
    assert.truthy(r.err:find("luamig: warning: the migration lock on postgresql:///" .. db
      .. "%?host=.- was not held by this session when luamig released it"), r.err)
    assert.equal("aaaa00000001", S.pg_versions(db))
    local _ = url
  end)

  it("--schema behind the pooler: search_path with SET LOCAL, the version table in that schema", function()
    local url
    db, url = S.pg_database()
    S.psql(db, "CREATE SCHEMA tenant_a")
    S.counted(dir, 3)
    local via = S.pg_url_via("LUAMIG_TEST_PGBOUNCER_URL", db)
    local r = S.run("--schema tenant_a --url " .. S.q(via) .. " upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("c00300000003", S.psql(db, "SELECT version_num FROM tenant_a.luamig_version"))
    assert.equal("3", S.psql(db, "SELECT count(*) FROM tenant_a.applied"))
    assert.equal("0", S.psql(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    local _ = url
  end)
end)
