-- The runner on its SQL-writer face (luamig.executor.writer): no database, the SQL a run would execute, in order.
-- Covers what each step writes (BEGIN, the migration, the version change, the history row, COMMIT), one
-- transaction for --single-transaction, migrations outside a transaction, autocommit_block, downgrades, stamp, and
-- a failing migration.
local rg = require("luamig.revision_graph")
local runtime = require("luamig.runtime")
local executor = require("luamig.executor")
local sqlite = require("luamig.dialect.sqlite")
local postgresql = require("luamig.dialect.postgresql")
local t = require("luamig.types")

local CFG = { version_table = "luamig_version", transaction_per_migration = true }

-- rev(id, down, up, extra): a loaded revision record whose upgrade runs up(op) and whose downgrade drops its table
local function rev(id, down, up, extra)
  local r = { revision = id, shown = "versions/" .. id .. ".lua", message = "step " .. id, checksum = string.rep("a", 64),
    down_revisions = down and { down } or {}, transactional = true,
    module = {
      upgrade = up or function(op) op.create_table("t_" .. id, { { "id", t.integer, primary_key = true } }) end,
      downgrade = function(op) op.drop_table("t_" .. id) end,
    } }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- writer(records, heads, dialect) -> runner, text(): a runner writing SQL into a buffer, the database at heads
local function writer(records, heads, dialect)
  local out = {}
  local d = dialect or sqlite
  local g = assert(rg.new(records))
  local x = executor.writer(function(s) out[#out + 1] = s end, d, CFG, heads)
  local lines = {}
  local r = runtime.new({ x = x, dialect = d, graph = g, cfg = CFG, progress = function(l) lines[#lines + 1] = l end })
  return r, function() return table.concat(out) end, lines
end

local function count(text, pattern)
  local _, n = text:gsub(pattern, "")
  return n
end

describe("#unit the runner writing SQL", function()
  it("creates the version tables from base, then writes each step in its own transaction", function()
    local r, text, lines = writer({ rev("a1", nil), rev("b2", "a1") })
    assert.equal(2, r:migrate("upgrade", "heads", {}))
    local sql = text()
    assert.truthy(sql:find("CREATE TABLE IF NOT EXISTS luamig_version", 1, true))
    assert.equal(2, count(sql, "\nBEGIN;\n"))
    assert.equal(2, count(sql, "COMMIT;\n"))
    -- the steps in order, each with its version change and history row inside its transaction
    local a = sql:find("-- upgrade <base> -> a1, step a1", 1, true)
    local b = sql:find("-- upgrade a1 -> b2, step b2", 1, true)
    assert.truthy(a and b and a < b)
    assert.truthy(sql:find("CREATE TABLE t_a1", a, true))
    assert.truthy(sql:find("INSERT INTO luamig_version (version_num) VALUES ('a1');", a, true))
    assert.truthy(sql:find("UPDATE luamig_version SET version_num = 'b2' WHERE version_num = 'a1';", b, true))
    assert.equal(2, count(sql, "INSERT INTO luamig_history"))
    assert.same({ "upgrade <base> -> a1, step a1", "upgrade a1 -> b2, step b2" }, lines)
    assert.same({ "b2" }, r:heads())
  end)

  it("writes one transaction around the whole run with --single-transaction", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1"), rev("c3", "b2") })
    assert.equal(3, r:migrate("upgrade", "heads", { single_transaction = true }))
    local sql = text()
    assert.equal(1, count(sql, "BEGIN;\n"))
    assert.equal(1, count(sql, "COMMIT;\n"))
    assert.truthy(sql:find("COMMIT;\n\n$"))
  end)

  it("from a given revision, assumes the version tables and writes only the steps after it", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1") }, { "a1" })
    assert.equal(1, r:migrate("upgrade", "heads", {}))
    local sql = text()
    assert.is_nil(sql:find("CREATE TABLE IF NOT EXISTS luamig_version", 1, true))
    assert.is_nil(sql:find("t_a1", 1, true))
    assert.truthy(sql:find("CREATE TABLE t_b2", 1, true))
  end)

  it("writes a migration with transactional = false outside BEGIN/COMMIT", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1", function(op) op.execute("VACUUM") end,
      { transactional = false }) }, { "a1" })
    assert.equal(1, r:migrate("upgrade", "heads", {}))
    local sql = text()
    assert.equal(0, count(sql, "BEGIN;"))
    assert.truthy(sql:find("VACUUM;\n", 1, true))
    assert.truthy(sql:find("UPDATE luamig_version SET version_num = 'b2'", 1, true))
  end)

  it("leaves the transaction for an autocommit_block and comes back", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1", function(op)
      op.execute("CREATE TABLE x (a INTEGER)")
      op.autocommit_block(function() op.execute("CREATE INDEX CONCURRENTLY ix_x ON x (a)") end)
      op.execute("DROP TABLE x")
    end) }, { "a1" }, postgresql)
    assert.equal(1, r:migrate("upgrade", "heads", {}))
    local sql = text()
    assert.truthy(sql:find("BEGIN;\n\nCREATE TABLE x (a INTEGER);\nCOMMIT;\n\nCREATE INDEX CONCURRENTLY ix_x ON x (a);\n"
      .. "BEGIN;\n\nDROP TABLE x;\n", 1, true), sql)
    assert.equal(2, count(sql, "BEGIN;"))
    assert.equal(2, count(sql, "COMMIT;"))
  end)

  it("writes a downgrade from the revision given to the target", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1"), rev("c3", "b2") }, { "c3" })
    assert.equal(2, r:migrate("downgrade", "a1", {}))
    local sql = text()
    local c = sql:find("-- downgrade c3 -> b2", 1, true)
    local b = sql:find("-- downgrade b2 -> a1", 1, true)
    assert.truthy(c and b and c < b)
    assert.truthy(sql:find("DROP TABLE t_c3", c, true))
    assert.truthy(sql:find("UPDATE luamig_version SET version_num = 'a1' WHERE version_num = 'b2';", b, true))
    assert.same({ "a1" }, r:heads())
  end)

  it("writes a stamp as its version change and history row, no migration", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1") }, { "a1" })
    assert.same({ "b2" }, r:stamp({ "b2" }))
    local sql = text()
    assert.truthy(sql:find("^BEGIN;\n\nUPDATE luamig_version SET version_num = 'b2' WHERE version_num = 'a1';\n"))
    assert.truthy(sql:find("'stamp', 'stamped'", 1, true))
    assert.is_nil(sql:find("t_b2", 1, true))
    assert.truthy(sql:find("COMMIT;\n\n$"))
  end)

  it("stops at a failing migration, naming the step, the file and line", function()
    local r, text = writer({ rev("a1", nil), rev("b2", "a1", function() error("boom") end) })
    local n, err = r:migrate("upgrade", "heads", {})
    assert.is_nil(n)
    assert.matches("^upgrade a1 %-> b2 failed", err.msg)
    assert.truthy(err.msg:find("boom", 1, true))
    -- the first step was written whole; nothing of the second one's version change
    local sql = text()
    assert.truthy(sql:find("VALUES ('a1')", 1, true))
    assert.is_nil(sql:find("version_num = 'b2'", 1, true))
  end)

  it("refuses a table rebuild, which would read the live table", function()
    local r = writer({ rev("a1", nil, function(op)
      op.create_table("t", { { "id", t.integer, primary_key = true }, { "v", t.text } })
      op.alter_column("t", "v", { nullable = false })
    end) })
    local n, err = r:migrate("upgrade", "heads", {})
    assert.is_nil(n)
    assert.truthy(err.msg:find("needs a table rebuild", 1, true), err.msg)
  end)
end)
