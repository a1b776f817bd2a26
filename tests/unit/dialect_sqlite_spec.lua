local ops = require("luamig.ops")
local schema = require("luamig.schema")
local t = require("luamig.types")
local d = require("luamig.dialect.sqlite")

local function sql(o) return d:compile(o) end

describe("#unit sqlite dialect", function()
  it("renders the SPEC's users table with named constraints and its index", function()
    local o = ops.create_table("users", {
      { "email", t.string, nullable = false },
      { "is_active", t.boolean, nullable = false, server_default = true },
      { "id", t.ulid, nullable = false },
      { "created_at", t.datetime, nullable = false, server_default = schema.text("(CURRENT_TIMESTAMP)") },
      { "tags", t.json, nullable = false, server_default = "[]" },
      { "score", t.float, server_default = 1.5 },
      schema.primary_key { "id" },
      schema.unique { "email" },
    })
    assert.same({ "CREATE TABLE users (\n"
      .. "\temail VARCHAR NOT NULL,\n"
      .. "\tis_active BOOLEAN DEFAULT 1 NOT NULL,\n"
      .. "\tid VARCHAR(26) NOT NULL,\n"
      .. "\tcreated_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL,\n"
      .. "\ttags JSON DEFAULT '[]' NOT NULL,\n"
      .. "\tscore FLOAT DEFAULT 1.5,\n"
      .. "\tCONSTRAINT pk_users PRIMARY KEY (id),\n"
      .. "\tCONSTRAINT uq_users_email UNIQUE (email)\n)" }, sql(o))
  end)

  it("maps every type of SPEC 4.1", function()
    local cases = {
      { t.integer, "INTEGER" }, { t.biginteger, "BIGINT" }, { t.smallinteger, "SMALLINT" }, { t.float, "FLOAT" },
      { t.numeric(10, 2), "NUMERIC(10, 2)" }, { t.string, "VARCHAR" }, { t.string(50), "VARCHAR(50)" },
      { t.text, "TEXT" }, { t.boolean, "BOOLEAN" }, { t.date, "DATE" }, { t.time, "TIME" },
      { t.datetime, "DATETIME" }, { t.datetime { timezone = true }, "DATETIME" }, { t.json, "JSON" },
      { t.blob, "BLOB" }, { t.uuid, "CHAR(32)" }, { t.ulid, "VARCHAR(26)" },
      { t.enum { "draft", "published", name = "state" }, "VARCHAR(9)" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], d:type_sql(c[1]), tostring(c[1])) end
  end)

  it("turns column flags into constraints and indexes named by the convention", function()
    local o = ops.create_table("orders", {
      { "user_id", t.ulid, nullable = false, references = "users.id", ondelete = "CASCADE", index = true },
      { "code", t.string(8), unique = true },
      { "slug", t.string, unique = true, index = true },
      { "state", t.enum { "new", "paid" } },
      { "id", t.integer, primary_key = true },
      schema.check("code <> ''", { name = "code_not_empty" }),
    })
    local out = sql(o)
    assert.equal(3, #out)
    assert.matches("\tstate VARCHAR%(4%) CHECK %(state IN %('new', 'paid'%)%),", out[1])
    assert.matches("\tid INTEGER NOT NULL,", out[1])
    assert.matches("CONSTRAINT pk_orders PRIMARY KEY %(id%)", out[1])
    assert.matches("CONSTRAINT fk_orders_user_id_users FOREIGN KEY%(user_id%) REFERENCES users %(id%) ON DELETE CASCADE", out[1])
    assert.matches("CONSTRAINT uq_orders_code UNIQUE %(code%)", out[1])
    assert.matches("CONSTRAINT ck_orders_code_not_empty CHECK %(code <> ''%)", out[1])
    assert.equal("CREATE INDEX ix_orders_user_id ON orders (user_id)", out[2])
    assert.equal("CREATE UNIQUE INDEX ix_orders_slug ON orders (slug)", out[3])
  end)

  it("quotes names that need it and never splices them bare", function()
    local o = ops.create_table("order", { { "select", t.integer }, { 'we"ird name', t.text }, { "Mixed", t.text } })
    assert.equal('CREATE TABLE "order" (\n\t"select" INTEGER,\n\t"we""ird name" TEXT,\n\t"Mixed" TEXT\n)', sql(o)[1])
    assert.same({ 'DROP INDEX "ix; DROP TABLE x"' }, sql(ops.drop_index("ix; DROP TABLE x", "t")))
    assert.equal("'it''s'", d:literal("it's"))
  end)

  it("compiles the ALTER TABLE forms SQLite has", function()
    assert.same({ "ALTER TABLE a RENAME TO b" }, sql(ops.rename_table("a", "b")))
    assert.same({ "ALTER TABLE t ADD COLUMN c VARCHAR(10) DEFAULT 'x' NOT NULL" },
      sql(ops.add_column("t", { "c", t.string(10), nullable = false, server_default = "x" })))
    assert.same({ "ALTER TABLE t ADD COLUMN p VARCHAR(26) CONSTRAINT fk_t_p_parents REFERENCES parents (id) ON DELETE SET NULL",
      "CREATE INDEX ix_t_p ON t (p)" },
      sql(ops.add_column("t", { "p", t.ulid, references = "parents.id", ondelete = "SET NULL", index = true })))
    -- the runner drops the column with ALTER TABLE unless an index or constraint uses it
    assert.is_true(sql(ops.drop_column("t", "c"))[1].try_alter)
    assert.same({ "ALTER TABLE t RENAME COLUMN a TO b" }, sql(ops.alter_column("t", "a", { new_column_name = "b" })))
    assert.same({ "CREATE UNIQUE INDEX IF NOT EXISTS ix_x ON t (a, b) WHERE a > 0" },
      sql(ops.create_index("ix_x", "t", { "a", "b" }, { unique = true, if_not_exists = true, where = "a > 0" })))
    assert.same({ "DROP TABLE IF EXISTS t" }, sql(ops.drop_table("t", { if_exists = true })))
  end)

  it("hands what needs a table rebuild to the runner", function()
    assert.equal("alter_column", sql(ops.alter_column("t", "c", { nullable = false }))[1].rebuild.op)
    assert.equal("create_unique_constraint", sql(ops.create_unique_constraint("uq", "t", { "a" }))[1].rebuild.op)
    assert.equal("drop_constraint", sql(ops.drop_constraint("uq", "t"))[1].rebuild.op)
    assert.equal("add_column", sql(ops.add_column("t", { "c", t.integer, unique = true }))[1].rebuild.op)
    assert.same({ "ALTER TABLE t RENAME COLUMN a TO b" }, sql(ops.alter_column("t", "a", { new_column_name = "b" })))
  end)

  it("validates op arguments without a database", function()
    assert.has_error(function() ops.create_table("t", { { "a" } }) end, "create_table('t'): column 'a' needs a type from luamig.types as its second entry")
    assert.has_error(function() ops.create_table("t", { { "a", t.text, nulable = true } }) end, "create_table('t'): column 'a' has an unknown option 'nulable'")
    assert.has_error(function() ops.create_index("ix", "t", {}) end, "create_index must be a list of column names")
    assert.has_error(function() ops.add_column("t", { "a", t.text, references = "nodot" }) end,
      "add_column('t'): column 'a': references must be \"table.column\", got 'nodot'")
    assert.has_error(function() d:fk_clause({ columns = { "x" }, reftable = "b", refcolumns = { "y" }, ondelete = "DROP TABLE" }) end)
  end)

  it("writes a bulk insert with one placeholder per column", function()
    local s, cols = d:bulk_insert_sql(ops.bulk_insert("t", { { b = 1, a = 2 }, { c = 3 } }))
    assert.equal("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", s)
    assert.same({ "a", "b", "c" }, cols)
  end)

  it("knows the reverse of reversible ops, each carrying the op it undoes", function()
    local function undo(o)
      local r = ops.reverse(o)
      assert.equal(o, r.reverse)
      r.reverse = nil
      return r
    end
    assert.same({ op = "drop_table", name = "t", if_exists = false }, undo(ops.create_table("t", { { "a", t.text } })))
    assert.same({ op = "drop_column", table = "t", column = "a" }, undo(ops.add_column("t", { "a", t.text })))
    assert.same({ op = "rename_table", old = "b", new = "a" }, undo(ops.rename_table("a", "b")))
    assert.same({ op = "drop_index", name = "ix", table = "t", if_exists = false, concurrently = false },
      undo(ops.create_index("ix", "t", { "a" })))
  end)

  it("reverses a reverse to the op itself, and a drop to what it carries", function()
    local create = ops.create_table("t", { { "a", t.text } })
    local back = ops.reverse(ops.reverse(create))
    back.reverse = nil
    assert.same(create, back)
    -- alter_column: the existing_* values are what it goes back to
    local r = ops.reverse(ops.alter_column("t", "a", { type = t.integer, existing_type = t.text, nullable = false,
      server_default = "1", existing_server_default = "0" }))
    assert.same({ type = t.text, existing_type = t.integer, nullable = true, server_default = "0",
      existing_server_default = "1" }, r.changes)
    -- a type change without its existing type cannot be undone
    assert.is_nil(ops.reverse(ops.alter_column("t", "a", { type = t.integer })))
    assert.is_nil(ops.reverse(ops.execute("UPDATE t SET a = 1")))
  end)
end)
