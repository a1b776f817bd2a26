-- Autogenerate's compare and render (luamig.autogen, luamig.render) on definitions, no database: the models against
-- "reflected" definitions made the same way, the op values of each difference, the downgrade from ops.reverse, and
-- the Lua source written for them.
local model = require("luamig.model")
local autogen = require("luamig.autogen")
local render = require("luamig.render")
local ops = require("luamig.ops")
local sqlite = require("luamig.dialect.sqlite")
local t = require("luamig.types")

-- defs(fn) -> the table definitions fn(md) registers into a fresh registry
local function defs(fn)
  local md = model.MetaData()
  fn(md)
  return md
end

local function users(md, extra)
  local items = { { "id", t.integer, primary_key = true }, { "email", t.string(120), unique = true } }
  for _, c in ipairs(extra or {}) do items[#items + 1] = c end
  return model.Table("users", items, { metadata = md })
end

local function strip(list)
  local out = {}
  for i, o in ipairs(list) do
    local c = {}
    for k, v in pairs(o) do if k ~= "reverse" then c[k] = v end end
    out[i] = c
  end
  return out
end

describe("#unit autogenerate", function()
  it("finds nothing between a model and the same definition", function()
    local md = defs(function(m) users(m) end)
    assert.same({}, autogen.compare(md, defs(function(m) users(m) end).tables, sqlite))
  end)

  it("a new table: create_table and its indexes, undone by the drops in reverse order", function()
    local md = defs(function(m)
      users(m)
      model.Table("posts", { { "id", t.integer, primary_key = true }, { "title", t.text, index = true } }, { metadata = m })
    end)
    local diffs = autogen.compare(md, defs(function(m) users(m) end).tables, sqlite)
    assert.equal(1, #diffs)
    assert.equal("+ table posts", diffs[1].text)
    assert.same({ "create_table", "create_index" }, { diffs[1].up[1].op, diffs[1].up[2].op })
    assert.same({ "drop_index", "drop_table" }, { diffs[1].down[1].op, diffs[1].down[2].op })
    local up, down = autogen.render(diffs)
    assert.equal(table.concat({
      '  op.create_table("posts", {',
      '    { "id", t.integer, nullable = false },',
      '    { "title", t.text, nullable = false },',
      '    op.primary_key { "id", name = op.f("pk_posts") },',
      '  })',
      '  op.create_index(op.f("ix_posts_title"), "posts", { "title" })' }, "\n"), up)
    assert.equal('  op.drop_index(op.f("ix_posts_title"), "posts")\n  op.drop_table("posts")', down)
  end)

  it("a dropped table is recreated in the downgrade from what was reflected", function()
    local md = defs(function() end)
    local diffs = autogen.compare(md, defs(function(m) users(m) end).tables, sqlite)
    assert.equal("- table users", diffs[1].text)
    assert.equal("drop_table", diffs[1].up[#diffs[1].up].op)
    local _, down = autogen.render(diffs)
    assert.truthy(down:find('op.create_table("users", {', 1, true), down)
    assert.truthy(down:find('op.unique { "email", name = op.f("uq_users_email") }', 1, true), down)
  end)

  it("column changes: add, drop (restored from the reflected column) and alter (back to the existing values)", function()
    local md = defs(function(m) users(m, { { "name", t.string(80), nullable = true } }) end)
    local db = defs(function(m) users(m, { { "age", t.integer, nullable = true }, { "name", t.text } }) end)
    local diffs = autogen.compare(md, db.tables, sqlite)
    local texts = {}
    for i, d in ipairs(diffs) do texts[i] = d.text end
    assert.same({ "~ column users.name: type TEXT -> VARCHAR(80), NOT NULL -> NULL", "- column users.age" }, texts)
    local up, down = autogen.render(diffs)
    assert.equal('  op.alter_column("users", "name", { type = t.string(80), existing_type = t.text, nullable = true })\n'
      .. '  op.drop_column("users", "age")', up)
    assert.equal('  op.add_column("users", { "age", t.integer, nullable = true })\n'
      .. '  op.alter_column("users", "name", { type = t.text, existing_type = t.string(80), nullable = false })', down)
  end)

  it("every downgrade op is ops.reverse of an upgrade op, and reversing it again gives the upgrade op", function()
    local md = defs(function(m)
      users(m, { { "name", t.text, index = true } })
      model.Table("tags", { { "id", t.integer, primary_key = true } }, { metadata = m })
    end)
    local db = defs(function(m) users(m, { { "old", t.integer } }) end)
    local diffs = autogen.compare(md, db.tables, sqlite)
    assert.is_true(#diffs >= 3)
    for _, d in ipairs(diffs) do
      assert.equal(#d.up, #d.down)
      for i, o in ipairs(d.up) do
        local undo = d.down[#d.down - i + 1]
        assert.equal(o, undo.reverse)
        assert.same(strip({ o }), strip({ ops.reverse(undo) }))
      end
    end
  end)

  it("renders every kind it generates through one function per op kind", function()
    for _, kind in ipairs({ "create_table", "drop_table", "add_column", "drop_column", "alter_column", "create_index",
      "drop_index", "create_unique_constraint", "create_check_constraint", "create_foreign_key", "drop_constraint",
      "execute" }) do
      assert.is_function(render.RENDER[kind], kind)
    end
    assert.equal('  op.drop_constraint("?", "users", { type = "unique" })',
      render.op({ op = "drop_constraint", table = "users", type = "unique" }, "  "))
    assert.has_error(function() render.op({ op = "no_such_op" }, "") end)
  end)
end)
