-- SQLite's table rebuild ("move and copy") on a table that has everything: 100,000 rows, an index, named and unnamed
-- CHECK constraints (table- and column-level), a trigger, a view and an inbound foreign key. Every row and object
-- survives a type change; a migration failing after the copy leaves the database as it was, with no temporary
-- table, and the retry after the fix succeeds.
local S = require("support")

local BASE = [[
  op.create_table("items", {
    { "id", t.integer, primary_key = true },
    { "qty", t.string(10), nullable = false },
    { "label", t.text, server_default = "x" },
    op.check("label <> ''", { name = "label_nonempty" }),
    op.check("length(qty) < 10"),
  })
  op.execute("ALTER TABLE items ADD COLUMN grade INTEGER CHECK (grade BETWEEN 0 AND 9)")
  op.create_index("ix_items_qty", "items", { "qty" })
  op.create_index("ix_items_label_part", "items", { "label" }, { where = op.text("label <> 'x'") })
  op.execute("CREATE TABLE audit (n INTEGER)")
  op.execute("CREATE TRIGGER tr_items AFTER INSERT ON items BEGIN INSERT INTO audit VALUES (new.id); END")
  op.execute("CREATE VIEW v_items AS SELECT id, qty FROM items WHERE id % 2 = 0")
  op.create_table("refs", {
    { "id", t.integer, primary_key = true },
    { "item_id", t.integer, references = "items.id", ondelete = "CASCADE" },
  })
  op.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
    .. "INSERT INTO items (id, qty, label, grade) SELECT i, CAST(i % 97 AS TEXT), 'l' || i, i % 10 FROM n")
  op.execute("INSERT INTO refs (id, item_id) SELECT id, id FROM items WHERE id % 10 = 0")]]

describe("#cli sqlite table rebuild", function()
  it("changes a column's type on 100,000 rows keeping rows, index, CHECKs, trigger, view and inbound foreign key", function()
    local dir = S.tmpdir()
    local db = dir .. "/app.db"
    S.migration(dir .. "/versions", { rev = "a1", msg = "base", up = BASE })
    local function alter(extra)
      S.migration(dir .. "/versions", { rev = "a2", down = "a1", msg = "qty to integer", up = [[
  op.alter_column("items", "qty", { type = t.integer, existing_type = t.string(10), using = "CAST(qty AS INTEGER)" })
]] .. (extra or ""), down_body = [[
  op.alter_column("items", "qty", { type = t.string(10), existing_type = t.integer })]] })
    end
    assert.equal(0, S.run("upgrade a1", { cwd = dir }).code)
    local before = S.dump(db)
    local sums = "SELECT count(*), sum(CAST(qty AS INTEGER)), sum(length(label)), sum(grade) FROM items"
    local sums_before = S.sql(db, sums)
    -- fails after the copy: nothing changes, no temporary table is left
    alter('  op.execute("INSERT INTO no_such_table VALUES (1)")')
    local r = S.run("upgrade head", { cwd = dir })
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade a1 -> a2 failed at versions/a2_qty_to_integer.lua:9: no such table: no_such_table; "
      .. "statement: INSERT INTO no_such_table VALUES (1)", r.errline)
    assert.equal(before, S.dump(db))
    assert.equal("", S.sql(db, "SELECT name FROM sqlite_master WHERE name LIKE '%luamig_tmp%'"))
    -- the retry after the fix succeeds
    alter()
    r = S.run("upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("INTEGER", S.sql(db, "SELECT type FROM pragma_table_info('items') WHERE name = 'qty'"))
    assert.equal("integer", S.sql(db, "SELECT DISTINCT typeof(qty) FROM items"))
    assert.equal(sums_before, S.sql(db, sums))
    assert.same({ "ix_items_label_part", "ix_items_qty" }, S.indexes(db, "items"))
    assert.matches("WHERE label <> 'x'$", S.sql(db, "SELECT sql FROM sqlite_master WHERE name = 'ix_items_label_part'"))
    assert.equal("tr_items", S.sql(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    assert.equal("50000", S.sql(db, "SELECT count(*) FROM v_items"))
    assert.equal("10000", S.sql(db, "SELECT count(*) FROM refs JOIN items ON items.id = refs.item_id"))
    assert.equal("", S.sql(db, "PRAGMA foreign_key_check"))
    assert.equal("ok", S.sql(db, "PRAGMA integrity_check"))
    -- every CHECK still bites: named, unnamed, column-level
    local function fails(sql, msg)
      local code, out = S.sh("sqlite3 -bail " .. S.q(db) .. " " .. S.q(sql))
      assert.are_not.equal(0, code, sql)
      assert.matches(msg, out)
    end
    fails("INSERT INTO items (id, qty, label) VALUES (200001, 1, '')", "CHECK constraint failed: ck_items_label_nonempty")
    fails("INSERT INTO items (id, qty, label) VALUES (200002, 1234567890123, 'y')", "CHECK constraint failed: length%(qty%) < 10")
    fails("INSERT INTO items (id, qty, label, grade) VALUES (200003, 1, 'y', 42)", "CHECK constraint failed: grade BETWEEN 0 AND 9")
    -- the trigger fires, the foreign key cascades
    S.sql(db, "INSERT INTO items (id, qty) VALUES (200004, 1)")
    assert.equal("100001", S.sql(db, "SELECT count(*) FROM audit"))
    S.sql(db, "PRAGMA foreign_keys = ON; DELETE FROM items WHERE id = 10")
    assert.equal("9999", S.sql(db, "SELECT count(*) FROM refs"))
    -- and back
    r = S.run("downgrade -1", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("VARCHAR(10)", S.sql(db, "SELECT type FROM pragma_table_info('items') WHERE name = 'qty'"))
    assert.equal("100000", S.sql(db, "SELECT count(*) FROM items"))
    S.rmrf(dir)
  end)

  it("a rebuild that breaks a foreign key fails with the row named, and leaves the database as it was", function()
    local dir = S.tmpdir()
    local db = dir .. "/app.db"
    S.migration(dir .. "/versions", { rev = "a1", msg = "base", up = [[
  op.create_table("parents", { { "id", t.integer, primary_key = true } })
  op.create_table("kids", { { "id", t.integer, primary_key = true }, { "parent_id", t.integer } })
  op.execute("INSERT INTO parents VALUES (1)")
  op.execute("INSERT INTO kids VALUES (1, 1), (2, 7)")]] })
    S.migration(dir .. "/versions", { rev = "a2", down = "a1", msg = "fk", up = [[
  op.create_foreign_key("fk_kids_parent", "kids", "parents", { "parent_id" }, { "id" })]] })
    assert.equal(0, S.run("upgrade a1", { cwd = dir }).code)
    local before = S.dump(db)
    local r = S.run("upgrade head", { cwd = dir })
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade a1 -> a2 failed at versions/a2_fk.lua:8: after rebuilding kids: row 2 of kids has no "
      .. "matching row in parents (1 row(s) in all); statement: PRAGMA foreign_key_check", r.errline)
    assert.equal(before, S.dump(db))
    S.rmrf(dir)
  end)
end)
