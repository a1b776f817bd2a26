local ops = require("luamig.ops")
local schema = require("luamig.schema")
local t = require("luamig.types")
local d = require("luamig.dialect.postgresql")

local function first(o) return d:compile(o)[1] end

describe("#unit postgresql dialect", function()
  it("numbers a table's only integer key itself (SERIAL), as SQLAlchemy renders it", function()
    assert.equal("CREATE TABLE things (\n\tid SERIAL NOT NULL,\n\tn INTEGER,\n\tCONSTRAINT pk_things PRIMARY KEY (id)\n)",
      first(ops.create_table("things", { { "id", t.integer, primary_key = true }, { "n", t.integer } })))
    assert.matches("\tid BIGSERIAL NOT NULL,", first(ops.create_table("b", { { "id", t.biginteger, primary_key = true } })))
    assert.matches("\tid SMALLSERIAL NOT NULL,", first(ops.create_table("s", { { "id", t.smallinteger, primary_key = true } })))
  end)

  it("keeps INTEGER where SQLAlchemy does: autoincrement = false, a server default, a foreign key, a composite key", function()
    assert.matches("\tid INTEGER NOT NULL,", first(ops.create_table("a", { { "id", t.integer, primary_key = true,
      autoincrement = false } })))
    assert.matches("\tid INTEGER DEFAULT 7 NOT NULL,", first(ops.create_table("a", { { "id", t.integer, primary_key = true,
      server_default = 7 } })))
    assert.matches("\tid INTEGER NOT NULL,", first(ops.create_table("a", { { "id", t.integer, primary_key = true,
      references = "p.id" } })))
    assert.matches("\tid INTEGER NOT NULL,", first(ops.create_table("a", { { "id", t.integer },
      schema.foreign_key({ "id" }, "p", { "id" }), schema.primary_key { "id" } })))
    local two = first(ops.create_table("a", { { "x", t.integer, primary_key = true }, { "y", t.integer, primary_key = true } }))
    assert.matches("\tx INTEGER NOT NULL,\n\ty INTEGER NOT NULL,", two)
    assert.matches("\tid VARCHAR%(26%) NOT NULL,", first(ops.create_table("u", { { "id", t.ulid, primary_key = true } })))
  end)
end)
