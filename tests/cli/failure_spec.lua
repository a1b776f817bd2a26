-- A migration that fails halfway leaves the database exactly as it was before that migration.
local S = require("support")

describe("#cli atomic failure", function()
  local dir, db

  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "base table", up = [[
  op.create_table("things", { { "id", t.integer, primary_key = true }, { "label", t.text } })
  op.bulk_insert("things", { { id = 1, label = "one" } })]], down_body = [[  op.drop_table("things")]] })
  end)
  after_each(function() S.rmrf(dir) end)

  local function run(args) return S.run(args, { cwd = dir }) end

  it("rolls back a migration whose second statement fails: dump identical, exit 1, one line naming revision, file and statement", function()
    assert.equal(0, run("upgrade head").code)
    local before = S.dump(db)
    local file = S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "broken", up = [[
  op.add_column("things", { "extra", t.integer })
  op.execute("UPDATE things SET extra = 1")
  op.execute("INSERT INTO no_such_table (x) VALUES (1)")
  op.create_table("never", { { "id", t.integer } })]] })
    local r = run("upgrade head")
    assert.equal(1, r.code)
    local shown = file:sub(#dir + 2)
    assert.equal("luamig: upgrade aaaa00000001 -> bbbb00000002 failed at " .. shown .. ":10: no such table: no_such_table; "
      .. "statement: INSERT INTO no_such_table (x) VALUES (1)", r.errline)
    assert.equal(before, S.dump(db))
    assert.equal("aaaa00000001", S.versions(db))
  end)

  it("rolls back a migration that raises a Lua error after some statements", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "raises", up = [[
  op.create_table("half", { { "id", t.integer } })
  error("data check failed")]] })
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.matches("^luamig: upgrade aaaa00000001 %-> bbbb00000002 failed at versions/bbbb00000002_raises%.lua:9: data check failed$", r.errline)
    -- the first migration of the run committed on its own; the failing one left nothing
    assert.same({ "luamig_history", "luamig_version", "things" }, S.tables(db))
    assert.equal("aaaa00000001", S.versions(db))
    assert.equal("1", S.sql(db, "SELECT count(*) FROM luamig_history"))
  end)

  it("--single-transaction rolls back the whole run", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "fails", up = [[
  op.execute("INSERT INTO things (id, label) VALUES (1, 'duplicate')")]] })
    local r = run("upgrade head --single-transaction")
    assert.equal(1, r.code)
    assert.matches("UNIQUE constraint failed: things%.id; statement: INSERT INTO things", r.errline)
    assert.same({}, S.tables(db))
  end)

  it("a failing downgrade leaves the schema and version rows as they were", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "bad down", up = [[
  op.create_table("t2", { { "id", t.integer } })]], down_body = [[
  op.drop_table("t2")
  op.drop_table("not_there")]] })
    assert.equal(0, run("upgrade head").code)
    local before = S.dump(db)
    local r = run("downgrade -1")
    assert.equal(1, r.code)
    assert.matches("^luamig: downgrade bbbb00000002 %-> aaaa00000001 failed at versions/bbbb00000002_bad_down%.lua:%d+: no such table: not_there; statement: DROP TABLE not_there$", r.errline)
    assert.equal(before, S.dump(db))
  end)

  it("a table rebuild that fails leaves the database as it was, with no temporary table behind", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "alter", up = [[
  op.create_table("t3", { { "id", t.integer } })
  op.execute("INSERT INTO things (id, label) VALUES (2, NULL)")
  op.alter_column("things", "label", { nullable = false })]] })
    assert.equal(0, run("upgrade aaaa00000001").code)
    local before = S.dump(db)
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade aaaa00000001 -> bbbb00000002 failed at versions/bbbb00000002_alter.lua:10: NOT NULL "
      .. "constraint failed: _luamig_tmp_things.label; statement: INSERT INTO _luamig_tmp_things (id, label) SELECT id, "
      .. "label FROM things", r.errline)
    assert.equal(before, S.dump(db))
    -- fixed, the retry succeeds
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "alter", up = [[
  op.create_table("t3", { { "id", t.integer } })
  op.execute("INSERT INTO things (id, label) VALUES (2, 'two')")
  op.alter_column("things", "label", { nullable = false })]] })
    r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    assert.same({ "id INTEGER 1 - 1", "label TEXT 1 - 0" }, S.columns(db, "things"))
    assert.equal("1|one\n2|two", S.sql(db, "SELECT id, label FROM things ORDER BY id"))
  end)
end)
