-- luamig.sql_text: placeholders outside string literals, quoted names, comments and dollar quotes.
local sql_text = require("luamig.sql_text")
local sqlite = require("luamig.dialect.sqlite")

local function literal(v) return sqlite:literal(v) end

describe("#unit sql_text", function()
  it("inlines ? in order, ?NNN by number and :name by key", function()
    assert.equal("INSERT INTO t VALUES (1, 'it''s')", sql_text.inline("INSERT INTO t VALUES (?, ?)", { 1, "it's" }, literal))
    assert.equal("SELECT 2, 1", sql_text.inline("SELECT ?2, ?1", { 1, 2 }, literal))
    assert.equal("UPDATE t SET a = 'x' WHERE b = 3", sql_text.inline("UPDATE t SET a = :a WHERE b = :b", { a = "x", b = 3 }, literal))
  end)

  it("leaves ? and :name alone inside literals, quoted names, comments and dollar quotes", function()
    local sql = "SELECT '?', \"a:b\", ? -- what?\n/* :x */ , $$ ? :y $$, $q$ ? $q$"
    assert.equal("SELECT '?', \"a:b\", 7 -- what?\n/* :x */ , $$ ? :y $$, $q$ ? $q$", sql_text.inline(sql, { 7 }, literal))
  end)

  it("fails naming what is missing: a value for a ? or a :name", function()
    local out, err = sql_text.inline("SELECT ?, ?", { 1 }, literal)
    assert.is_nil(out)
    assert.truthy(err:find("placeholder", 1, true), err)
    out, err = sql_text.inline("SELECT :who", {}, literal)
    assert.is_nil(out)
    assert.truthy(err:find(":who", 1, true), err)
  end)

  it("numbers placeholders for libpq, one number per distinct name", function()
    local text, values, n = sql_text.numbered("SELECT :a, :b, :a, '?'", { a = 1, b = "x" })
    assert.equal("SELECT $1, $2, $1, '?'", text)
    assert.same({ 1, "x" }, values)
    assert.equal(2, n)
  end)

  it("inlines luamig's own plain SQL, the same as the general way", function()
    local sql = "UPDATE v SET version_num = ? WHERE version_num = ?"
    assert.equal(sql_text.inline(sql, { "b", "a" }, literal), sql_text.inline_plain(sql, { "b", "a" }, literal))
    assert.equal(sql_text.inline(sql, { "c", "b" }, literal), sql_text.inline_plain(sql, { "c", "b" }, literal))
  end)

  it("splits statements on ; outside literals and comments", function()
    assert.same({ "CREATE TABLE a (x TEXT DEFAULT ';')", "-- one; two\nSELECT 1", "SELECT $$;$$" },
      sql_text.split("CREATE TABLE a (x TEXT DEFAULT ';');\n-- one; two\nSELECT 1; ;SELECT $$;$$;"))
  end)
end)
