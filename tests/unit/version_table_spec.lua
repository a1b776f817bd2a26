-- Version bookkeeping (luamig.version_table and the executors' record): the statements that move the version rows,
-- their --sql text, and reading them back, on a real in-memory SQLite database.
local vt = require("luamig.version_table")
local executor = require("luamig.executor")
local core = require("luamig.core")
local sqlite = require("luamig.dialect.sqlite")

local V = "luamig_version"

-- rows(conn) -> the version rows, sorted
local function rows(conn) return assert(vt.read(conn, sqlite, V)) end

describe("#unit version bookkeeping", function()
  local conn
  before_each(function() conn = assert(core.sqlite_open(":memory:", 100)) end)
  after_each(function() conn:close() end)

  it("moves one row along a linear history with one UPDATE that must change one row", function()
    assert.same({ { sql = "UPDATE luamig_version SET version_num = ? WHERE version_num = ?", params = { "b", "a" },
      expect = 1 } }, vt.change_sql(sqlite, V, { "a" }, { "b" }))
    assert.same({}, vt.change_sql(sqlite, V, { "a" }, { "a" }))
  end)

  it("splits and joins rows at branches and merges: UPDATE, then DELETE or INSERT", function()
    local merge = vt.change_sql(sqlite, V, { "b1", "b2" }, { "m" })
    assert.equal(2, #merge)
    assert.truthy(merge[1].sql:find("^UPDATE"))
    assert.truthy(merge[2].sql:find("^DELETE"))
    assert.equal(1, merge[2].expect)
    local split = vt.change_sql(sqlite, V, { "m" }, { "b1", "b2" })
    assert.truthy(split[1].sql:find("^UPDATE"))
    assert.truthy(split[2].sql:find("^INSERT"))
  end)

  it("reads no rows where the table does not exist, and the rows the live executor records", function()
    assert.same({}, rows(conn))
    local x = executor.live(conn, sqlite, { version_table = V })
    x:ensure_tables()
    x:record({}, { "a" }, { revision = "a", direction = "upgrade", status = "applied", message = "m", filename = "f",
      down_revision = "" })
    x:record({ "a" }, { "b1", "b2" }, { revision = "b", direction = "upgrade", status = "applied" })
    assert.same({ "b1", "b2" }, rows(conn))
    local h = assert(vt.history(conn, sqlite, V))
    assert.equal(2, #h)
    assert.equal("b", h[1].revision)
    assert.equal(core.version, h[1].luamig_version)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", h[1].applied_at)
  end)

  it("a row another process moved fails the UPDATE that expected it", function()
    local x = executor.live(conn, sqlite, { version_table = V })
    x:ensure_tables()
    x:record({}, { "a" }, { revision = "a", direction = "upgrade", status = "applied" })
    assert(conn:exec("UPDATE luamig_version SET version_num = 'z'"))
    local ok, err = pcall(x.record, x, { "a" }, { "b" }, { revision = "b", direction = "upgrade", status = "applied" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("another process changed it", 1, true), tostring(err))
  end)

  it("writes the same changes as SQL text for --sql, values inlined", function()
    assert.equal("UPDATE luamig_version SET version_num = 'b' WHERE version_num = 'a';\n",
      vt.change_text(sqlite, V, { "a" }, { "b" }))
    local text = vt.history_text(sqlite, V, { revision = "it's", down_revision = "a", direction = "upgrade",
      status = "applied", message = "o'k", filename = "f.lua", luamig_version = "0.1.0" })
    assert.truthy(text:find("'it''s'", 1, true))
    assert.truthy(text:find("'o''k'", 1, true))
    assert.truthy(text:find("CURRENT_TIMESTAMP", 1, true))
    -- the text runs: the tables, then the change and the history row
    local w = {}
    local x = executor.writer(function(s) w[#w + 1] = s end, sqlite, { version_table = V }, {})
    x:ensure_tables()
    x:record({}, { "a" }, { revision = "a", direction = "upgrade", status = "applied", message = "m", filename = "f" })
    assert(conn:exec(table.concat(w)))
    assert.same({ "a" }, rows(conn))
    assert.same({ "a" }, x:heads())
  end)

  it("finds the migrations left unfinished outside a transaction; this process's own row is not live", function()
    local x = executor.live(conn, sqlite, { version_table = V })
    x:ensure_tables()
    assert(x:begin())
    -- (the step's 'running' row commits with the work before it)
    x:detach({ id = "c", direction = "upgrade", r = { down_revisions = { "b" }, message = "m", shown = "c.lua" } })
    local list = assert(x:unfinished())
    assert.equal(1, #list)
    assert.equal("c", list[1].revision)
    assert.equal("running", list[1].status)
    assert.is_false(list[1].live)
    x:settle()
    assert.same({}, assert(x:unfinished()))
  end)
end)
