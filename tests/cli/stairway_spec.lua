-- luamig test: the stairway catches a downgrade that does not restore the schema.
local S = require("support")

local function history(forget_index)
  local dir = S.tmpdir()
  S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "table", up = [[
  op.create_table("items", { { "id", t.integer, primary_key = true }, { "sku", t.string(20) } })]],
    down_body = [[  op.drop_table("items")]] })
  S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "index", up = [[
  op.create_index("ix_items_sku", "items", { "sku" })]],
    down_body = forget_index and "" or [[  op.drop_index("ix_items_sku", "items")]] })
  return dir
end

describe("#cli luamig test", function()
  it("passes a history whose downgrades restore the schema, on in-memory SQLite", function()
    local dir = history(false)
    local r = S.run("test", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.matches("test: 2 migration%(s%) each upgraded, downgraded and upgraded again; every downgrade restored the schema\n$", r.err)
    assert.is_false(S.exists(dir .. "/app.db"))
    S.rmrf(dir)
  end)

  it("catches a downgrade that forgets to drop an index, naming the revision and the index (exit 3)", function()
    local dir = history(true)
    local r = S.run("test", { cwd = dir })
    assert.equal(3, r.code)
    assert.equal("luamig: test: the downgrade of bbbb00000002 (versions/bbbb00000002_index.lua) does not restore the schema: "
      .. "left behind: index ix_items_sku: CREATE INDEX ix_items_sku ON items (sku)", r.errline)
    S.rmrf(dir)
  end)

  it("refuses a database that is not empty", function()
    local dir = history(false)
    S.sql(dir .. "/real.db", "CREATE TABLE precious (x)")
    local r = S.run("test --url sqlite:///real.db", { cwd = dir })
    assert.equal(1, r.code)
    assert.equal("luamig: luamig test needs an empty scratch database; sqlite:///real.db is not empty", r.first)
    assert.equal("precious", S.sql(dir .. "/real.db", "SELECT name FROM sqlite_master"))
    S.rmrf(dir)
  end)
end)

describe("#postgres luamig test", function()
  it("catches the same forgotten index on a PostgreSQL scratch database", function()
    local db, url = S.pg_database()
    local dir = history(true)
    local r = S.run(S.q("--url=" .. url) .. " test", { cwd = dir })
    assert.equal(3, r.code)
    assert.equal("luamig: test: the downgrade of bbbb00000002 (versions/bbbb00000002_index.lua) does not restore the schema: "
      .. "left behind: index CREATE INDEX ix_items_sku ON public.items USING btree (sku)", r.errline)
    S.rmrf(dir)
    S.pg_drop(db)
    local db2, url2 = S.pg_database()
    local ok_dir = history(false)
    local r2 = S.run(S.q("--url=" .. url2) .. " test", { cwd = ok_dir })
    assert.equal(0, r2.code, r2.err)
    S.rmrf(ok_dir)
    S.pg_drop(db2)
  end)
end)
