-- The PostgreSQL migration lock and connection state around a run: given back on every path of the Lua API, its
-- loss reported, and a failed bulk_insert leaving nothing behind on the connection.
local support = require("support")

-- advisory_locks(db) -> how many advisory locks are held on this database (other specs may hold theirs on the
-- same server meanwhile)
local function advisory_locks(db)
  return support.psql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    .. "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
end

describe("#postgres the migration lock", function()
  local dir, db, url
  before_each(function()
    dir = support.tmpdir()
    db, url = support.pg_database()
  end)
  after_each(function()
    support.pg_drop(db)
    support.rmrf(dir)
  end)

  it("is given back when something raises inside a run of the Lua API", function()
    support.migration(dir .. "/versions", { rev = "aaaa00000001", up = [[  op.create_table("a", { { "id", t.integer } })]] })
    support.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001",
      up = [[  op.create_table("b", { { "id", t.integer } })]] })
    local luamig = require("luamig")
    local m = assert(luamig.open{ url = url, script_location = dir,
      log = function(line) error("the host's log failed on: " .. line) end })
    local n, err = m:upgrade("head")
    assert.is_nil(n)
    assert.truthy(err:find("the host's log failed", 1, true), err)
    -- the handle is still open, and the lock is not held by it (nor by anyone)
    assert.are.equal("0", advisory_locks(db))
    -- the step whose progress line raised had committed; nothing else ran
    assert.are.equal("aaaa00000001", support.pg_versions(db))
    m:close()
  end)

  it("reports, as a warning, a lock that was not held when it was given back (a pooler's mark)", function()
    support.migration(dir .. "/versions", { rev = "aaaa00000001",
      up = [[  op.execute("SELECT pg_advisory_unlock_all()")]] })
    local r = support.run(support.q("--url=" .. url) .. " upgrade head", { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("luamig: warning: the migration lock on postgresql://", 1, true), r.err)
    assert.truthy(r.err:find("was not held by this session when luamig released it", 1, true), r.err)
    assert.are.equal("aaaa00000001", support.pg_versions(db))
  end)

  it("bulk_insert leaves no prepared statement behind when a row fails", function()
    local create = [[  op.create_table("%s", { { "id", t.integer, nullable = false } })
  op.bulk_insert("%s", %s)]]
    support.migration(dir .. "/versions", { rev = "aaaa00000001",
      up = create:format("a", "a", "{ { id = 1 }, {} }") })
    support.migration(dir .. "/versions", { rev = "bbbb00000002",
      up = create:format("b", "b", "{ { id = 1 }, { id = 2 } }") })
    local luamig = require("luamig")
    local m = assert(luamig.open{ url = url, script_location = dir })
    local n, err = m:upgrade("aaaa00000001")
    assert.is_nil(n)
    assert.truthy(err:find("null value", 1, true), err)
    -- the same connection: the next bulk_insert prepares again without a clash
    n, err = m:upgrade("bbbb00000002")
    assert.are.equal(1, n, err)
    assert.are.equal("2", support.psql(db, "SELECT count(*) FROM b"))
    assert.are.equal("0", support.psql(db, "SELECT count(*) FROM pg_prepared_statements"))
    m:close()
  end)
end)
