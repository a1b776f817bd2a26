-- upgrade/downgrade --timeout: a migration running longer is stopped and rolled back, on SQLite (its Lua code, or
-- its statement interrupted) and on PostgreSQL (statement_timeout); the ones before it stay applied.
local S = require("support")

local function project(dir, url, slow_up)
  S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nurl = " .. url .. "\n")
  S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "first",
    up = [[  op.create_table("first", { { "id", t.integer } })]], down_body = [[  op.drop_table("first")]] })
  S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "slow",
    up = "  op.create_table(\"second\", { { \"id\", t.integer } })\n" .. slow_up,
    down_body = [[  op.drop_table("second")]] })
end

describe("#cli --timeout", function()
  local dir
  before_each(function() dir = S.tmpdir() end)
  after_each(function() S.rmrf(dir) end)

  it("refuses a timeout that is not a positive number (exit 2)", function()
    project(dir, "sqlite:///app.db", "")
    for _, v in ipairs({ "0", "-1", "soon", "nan", "inf" }) do
      local r = S.run("upgrade head --timeout " .. v, { cwd = dir })
      assert.equal(2, r.code)
      assert.equal("luamig: --timeout takes a number of seconds greater than 0, not '" .. v .. "'", r.errline)
    end
  end)

  it("lets migrations that finish in time through", function()
    project(dir, "sqlite:///app.db", "")
    local r = S.run("upgrade head --timeout 30", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb00000002", S.versions(dir .. "/app.db"))
    r = S.run("downgrade base --timeout 30", { cwd = dir })
    assert.equal(0, r.code, r.err)
  end)

  it("stops a downgrade that never ends, too", function()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nurl = sqlite:///app.db\n")
    S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "first",
      up = [[  op.create_table("first", { { "id", t.integer } })]],
      down_body = "  op.drop_table(\"first\")\n  while true do end" })
    assert.equal(0, S.run("upgrade head", { cwd = dir }).code)
    local r = S.run("downgrade base --timeout 1", { cwd = dir })
    assert.equal(1, r.code)
    assert.equal("luamig: downgrade aaaa00000001 -> <base> failed at versions/aaaa00000001_first.lua:12: exceeded --timeout of 1 s",
      r.errline)
    assert.same({ "first", "luamig_history", "luamig_version" }, S.tables(dir .. "/app.db"))
    assert.equal("aaaa00000001", S.versions(dir .. "/app.db"))
  end)
end)

describe("#postgres --timeout", function()
  local dir, db, url
  before_each(function()
    dir = S.tmpdir()
    db, url = S.pg_database()
  end)
  after_each(function()
    S.rmrf(dir)
    S.pg_drop(db)
  end)

  it("ends a statement that runs past it and rolls the migration back", function()
    project(dir, url, [[  op.execute("SELECT pg_sleep(30)")]])
    local r = S.run("upgrade head --timeout 1", { cwd = dir })
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade aaaa00000001 -> bbbb00000002 failed at versions/bbbb00000002_slow.lua:9: "
      .. "exceeded --timeout of 1 s; statement: SELECT pg_sleep(30)", r.errline)
    assert.equal("aaaa00000001", S.pg_versions(db))
    assert.equal("", S.psql(db, "SELECT to_regclass('second')"))
  end)

  it("stops Lua code that loops, between statements", function()
    project(dir, url, "  while true do end")
    local r = S.run("upgrade head --timeout 1", { cwd = dir })
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade aaaa00000001 -> bbbb00000002 failed at versions/bbbb00000002_slow.lua:9: exceeded --timeout of 1 s",
      r.errline)
    assert.equal("aaaa00000001", S.pg_versions(db))
  end)
end)
