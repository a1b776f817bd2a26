-- The session settings around a run are checked when they are restored: a run whose restore fails exits 1 with a
-- line naming the setting, after saying what it applied (its migrations stay committed).
local S = require("support")

describe("#cli session settings", function()
  local dir
  before_each(function() dir = S.tmpdir() end)
  after_each(function() S.rmrf(dir) end)

  it("a journal_mode that cannot be restored fails the run, naming it", function()
    -- the run starts in SQLite's default DELETE mode (migrated in PERSIST, DELETE again at the end); the second
    -- migration turns the database to WAL and leaves a reader open on it, so going back to DELETE cannot happen
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nurl = sqlite:///app.db\nlock_timeout = 0.2\n")
    S.write(dir .. "/versions/aaaa00000001_base.lua", [[
--- base
local t = require("luamig.types")
return { revision = "aaaa00000001", down_revision = nil,
  upgrade = function(op) op.create_table("things", { { "id", t.integer, primary_key = true } }) end,
  downgrade = function(op) op.drop_table("things") end }
]])
    S.write(dir .. "/versions/bbbb00000002_wal.lua", [[
--- wal and a reader
local core = require("luamig.core")
local reader
return { revision = "bbbb00000002", down_revision = "aaaa00000001", transactional = false,
  upgrade = function(op)
    op.execute("PRAGMA journal_mode = WAL")
    reader = assert(core.sqlite_open("app.db", 0))
    assert(reader:exec("BEGIN"))
    assert(reader:query("SELECT count(*) AS n FROM things"))
  end,
  downgrade = function() end }
]])
    local r = S.run("upgrade head", { cwd = dir })
    assert.equal(1, r.code, r.err)
    assert.equal("luamig: cannot restore journal_mode = DELETE: database is locked", r.errline)
    assert.truthy(r.err:find("2 migration(s) were applied and committed before it.", 1, true), r.err)
    assert.equal("bbbb00000002", S.versions(dir .. "/app.db"))
  end)

  it("a run whose settings are restored leaves the database in DELETE mode with no journal", function()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nurl = sqlite:///app.db\n")
    S.migration(dir .. "/versions", { rev = "aaaa00000001", up = [[  op.create_table("a", { { "id", t.integer } })]] })
    local r = S.run("upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("delete", S.sql(dir .. "/app.db", "PRAGMA journal_mode"))
    assert.is_false(S.exists(dir .. "/app.db-journal"))
  end)
end)
