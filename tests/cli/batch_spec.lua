-- SQLite table rebuilds: the CHECK an enum type writes goes with the type and follows a rename; batch_alter_table
-- rebuilds once for all its ops (recreate = "always" / "never", batch.execute); AUTOINCREMENT and sqlite_sequence
-- survive a rebuild; rows that broke a foreign key before a rebuild are reported, not blamed on it.
-- (A rebuild compares with the rows as they were when it started: rows the same migration wrote before it, with
-- foreign-key enforcement off, count as there before.)
local S = require("support")

local function project(migrations)
  local dir = S.tmpdir()
  S.chain(dir, migrations)
  return dir, dir .. "/app.db"
end

local function run(dir, args) return S.run(args, { cwd = dir }) end

local function ok(dir, args)
  local r = run(dir, args)
  assert.are.equal(0, r.code, args .. ": " .. r.err)
  return r
end

-- inserts(db, sql) -> true when the statement succeeds in the sqlite3 shell (foreign keys off, as luamig leaves them)
local function inserts(db, sql)
  local code = S.sh("sqlite3 -batch " .. S.q(db) .. " " .. S.q(sql))
  return code == 0
end

local ENUM_TABLE = [[  op.create_table("t", {
    { "id", t.integer, nullable = false },
    { "kind", t.enum{ "a", "b", "c", name = "kind" } },
    { "size", t.integer, nullable = true },
    op.primary_key { "id" },
    op.check("size IS NULL OR size < 100", { name = "ck_t_size" }),
  })]]

describe("#sqlite rebuilds", function()
  it("drop the CHECK of an enum type when the column's type changes, and keep the user's own", function()
    local dir, db = project({ ENUM_TABLE, [[  op.alter_column("t", "kind", { type = t.string(9) })]] })
    ok(dir, "upgrade head")
    local sql = S.sql(db, "SELECT sql FROM sqlite_master WHERE name = 't'")
    assert.truthy(sql:find("VARCHAR(9)", 1, true), sql)
    assert.falsy(sql:find("IN ('a'", 1, true), sql)
    assert.is_true(inserts(db, "INSERT INTO t (id, kind) VALUES (1, 'd')"))
    assert.is_false(inserts(db, "INSERT INTO t (id, kind, size) VALUES (2, 'a', 500)"))
    S.rmrf(dir)
  end)

  it("let the CHECK of an enum type follow a rename in the same alter_column", function()
    local dir, db = project({ ENUM_TABLE, [[  op.execute("INSERT INTO t (id, kind) VALUES (1, 'b')")
  op.alter_column("t", "kind", { new_column_name = "sort", nullable = false })]] })
    ok(dir, "upgrade head")
    assert.are.equal("1|b", S.sql(db, "SELECT id, sort FROM t"))
    assert.is_false(inserts(db, "INSERT INTO t (id, sort) VALUES (2, 'd')"))
    assert.is_false(inserts(db, "INSERT INTO t (id) VALUES (3)"))
    assert.is_true(inserts(db, "INSERT INTO t (id, sort) VALUES (4, 'c')"))
    S.rmrf(dir)
  end)

  -- schema_changes(db, fn) -> how many schema changes (PRAGMA schema_version) fn's run made: one rebuild makes a
  -- fixed number (create, drop, rename, each index again), so n rebuilds make n times as many
  local function schema_changes(db, fn)
    local v0 = tonumber(S.sql(db, "PRAGMA schema_version"))
    fn()
    return tonumber(S.sql(db, "PRAGMA schema_version")) - v0
  end

  local BASE = [[  op.create_table("w", {
    { "id", t.integer, nullable = false },
    { "a", t.integer }, { "b", t.integer }, { "c", t.string(10) },
    op.primary_key { "id" },
  })
  op.create_index("ix_w_a", "w", { "a" })
  op.execute("INSERT INTO w (id, a, b, c) VALUES (1, 1, 2, 'x'), (2, 3, 4, 'y')")]]

  it("batch_alter_table rebuilds once for all its ops", function()
    local one = project({ BASE, [[  op.alter_column("w", "a", { nullable = false })]] })
    local three = project({ BASE, [[  op.alter_column("w", "a", { nullable = false })
  op.alter_column("w", "b", { nullable = false })
  op.alter_column("w", "c", { type = t.string(20) })]] })
    local batch = project({ BASE, [[  op.batch_alter_table("w", function(batch)
    batch.alter_column("a", { nullable = false })
    batch.alter_column("b", { nullable = false })
    batch.alter_column("c", { type = t.string(20) })
  end)]] })
    local changes = {}
    for name, dir in pairs({ one = one, three = three, batch = batch }) do
      ok(dir, "upgrade +1")
      changes[name] = schema_changes(dir .. "/app.db", function() ok(dir, "upgrade head") end)
      S.rmrf(dir)
    end
    assert.is_true(changes.one > 0)
    assert.are.equal(3 * changes.one, changes.three)
    assert.are.equal(changes.one, changes.batch)
  end)

  it("batch_alter_table: the new definition, the rows, the index, and batch.execute run at once", function()
    local dir, db = project({ BASE, [[  op.batch_alter_table("w", function(batch)
    batch.execute("UPDATE w SET b = 0 WHERE b IS NULL")
    batch.add_column({ "d", t.integer, nullable = true })
    batch.alter_column("b", { nullable = false, new_column_name = "bb" })
    batch.drop_column("c")
    batch.create_index("ix_w_bb", { "bb" })
  end)]] })
    ok(dir, "upgrade head")
    assert.same({ "id INTEGER 1 - 1", "a INTEGER 0 - 0", "bb INTEGER 1 - 0", "d INTEGER 0 - 0" }, S.columns(db, "w"))
    assert.are.equal("1|1|2\n2|3|4", S.sql(db, "SELECT id, a, bb FROM w ORDER BY id"))
    assert.same({ "ix_w_a", "ix_w_bb" }, S.indexes(db, "w"))
    S.rmrf(dir)
  end)

  it("batch_alter_table recreate = \"always\" rebuilds with no op; \"never\" refuses an op that needs one", function()
    local dir, db = project({ BASE, [[  op.batch_alter_table("w", function() end, { recreate = "always" })]] })
    ok(dir, "upgrade +1")
    assert.is_true(schema_changes(db, function() ok(dir, "upgrade head") end) > 0)
    assert.are.equal("1|1|2|x\n2|3|4|y", S.sql(db, "SELECT * FROM w ORDER BY id"))
    S.rmrf(dir)
    dir, db = project({ BASE, [[  op.batch_alter_table("w", function(batch)
    batch.add_column({ "d", t.integer, nullable = true })
    batch.alter_column("c", { type = t.text })
  end, { recreate = "never" })]] })
    ok(dir, "upgrade +1")
    local before = S.dump(db)
    local r = run(dir, "upgrade head")
    assert.are.equal(1, r.code)
    assert.truthy(r.errline:find("batch_alter_table('w', recreate = \"never\"): alter_column('w', 'c') needs a table "
      .. "rebuild on SQLite", 1, true), r.errline)
    assert.are.equal(before, S.dump(db))
    S.rmrf(dir)
    -- with ops ALTER TABLE can do, "never" runs them
    dir, db = project({ BASE, [[  op.batch_alter_table("w", function(batch)
    batch.add_column({ "d", t.integer, nullable = true })
    batch.alter_column("c", { new_column_name = "cc" })
  end, { recreate = "never" })]] })
    ok(dir, "upgrade head")
    assert.same({ "id INTEGER 1 - 1", "a INTEGER 0 - 0", "b INTEGER 0 - 0", "cc VARCHAR(10) 0 - 0", "d INTEGER 0 - 0" },
      S.columns(db, "w"))
    S.rmrf(dir)
  end)

  it("keep AUTOINCREMENT and the sqlite_sequence value through a rebuild", function()
    local dir, db = project({ [[  op.create_table("n", {
    { "id", t.integer, nullable = false },
    { "v", t.string(10) },
    op.primary_key { "id" },
  }, { sqlite_autoincrement = true })
  op.execute("INSERT INTO n (v) VALUES ('a'), ('b'), ('c')")
  op.execute("DELETE FROM n WHERE id = 3")]], [[  op.alter_column("n", "v", { type = t.string(40), nullable = false })]],
      [[  op.batch_alter_table("n", function(batch) batch.add_column({ "w", t.integer, nullable = true }) end,
    { recreate = "always" })]] })
    ok(dir, "upgrade +1")
    assert.truthy(S.sql(db, "SELECT sql FROM sqlite_master WHERE name = 'n'"):find("PRIMARY KEY AUTOINCREMENT", 1, true))
    assert.are.equal("3", S.sql(db, "SELECT seq FROM sqlite_sequence WHERE name = 'n'"))
    ok(dir, "upgrade head")
    local sql = S.sql(db, "SELECT sql FROM sqlite_master WHERE name = 'n'")
    assert.truthy(sql:find("PRIMARY KEY AUTOINCREMENT", 1, true), sql)
    assert.truthy(sql:find("VARCHAR(40)", 1, true), sql)
    assert.are.equal("3", S.sql(db, "SELECT seq FROM sqlite_sequence WHERE name = 'n'"))
    assert.is_true(inserts(db, "INSERT INTO n (v) VALUES ('d')"))
    assert.are.equal("1|a\n2|b\n4|d", S.sql(db, "SELECT id, v FROM n ORDER BY id"))
    S.rmrf(dir)
  end)

  it("batch_alter_table sqlite_autoincrement = true gives a table AUTOINCREMENT", function()
    local dir, db = project({ [[  op.create_table("m", { { "id", t.integer, nullable = false }, op.primary_key { "id" } })
  op.execute("INSERT INTO m (id) VALUES (7)")]],
      [[  op.batch_alter_table("m", function() end, { sqlite_autoincrement = true })]] })
    ok(dir, "upgrade head")
    assert.truthy(S.sql(db, "SELECT sql FROM sqlite_master WHERE name = 'm'"):find("AUTOINCREMENT", 1, true))
    assert.is_true(inserts(db, "INSERT INTO m DEFAULT VALUES"))
    assert.are.equal("7\n8", S.sql(db, "SELECT id FROM m ORDER BY id"))
    S.rmrf(dir)
  end)

  it("run a rebuild over rows that broke a foreign key before it, saying how many; fail only for new ones", function()
    local dir, db = project({ [[  op.create_table("p", { { "id", t.integer, nullable = false }, op.primary_key { "id" } })
  op.create_table("c", {
    { "id", t.integer, nullable = false },
    { "p_id", t.integer, references = "p.id" },
    { "note", t.string(10) },
    op.primary_key { "id" },
  })
  op.execute("INSERT INTO p (id) VALUES (1)")
  op.execute("INSERT INTO c (id, p_id) VALUES (9, 1)")]], [[  op.alter_column("c", "note", { type = t.text })]],
      [[  op.alter_column("c", "p_id", { type = t.integer, using = "p_id + 1000" })]] })
    ok(dir, "upgrade +1")
    -- two dangling rows, written with foreign keys off (the sqlite3 shell's default)
    assert.is_true(inserts(db, "INSERT INTO c (id, p_id) VALUES (1, 41), (2, 42)"))
    local r = ok(dir, "upgrade +1")
    assert.truthy(r.err:find("luamig: warning: rebuilding c: 2 row(s) of c had no matching row in p before the rebuild "
      .. "already; left as they were", 1, true), r.err)
    assert.are.equal("1|41\n2|42\n9|1", S.sql(db, "SELECT id, p_id FROM c ORDER BY id"))
    -- a third one, made by the rebuild itself (row 9 loses its parent): that one fails it
    local before = S.dump(db)
    r = run(dir, "upgrade head")
    assert.are.equal(1, r.code)
    assert.truthy(r.errline:find("after rebuilding c: row %d+ of c has no matching row in p %(3 row%(s%) in all, 2 before "
      .. "the rebuild%)"), r.errline)
    assert.are.equal(before, S.dump(db))
    S.rmrf(dir)
  end)
end)
