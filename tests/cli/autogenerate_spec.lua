-- revision --autogenerate and check, on SQLite and PostgreSQL: from an empty database to the kit and SPEC 5's models
-- and back; then a table of model changes, each of which must produce exactly the expected ops, apply (check then
-- exits 0) and revert (the previous models match the database again).
local S = require("support")


local SPEC5 = [[
local model = require("luamig.model")
local t = require("luamig.types")
require("luamig.kit.models")
model.Entity("users", {
  { "email", t.string, unique = true, index = true },
  { "name", t.string },
  { "is_active", t.boolean, server_default = true },
})
model.Entity("orders", {
  { "user_id", t.ulid, references = "users.id", ondelete = "CASCADE", index = true },
  { "total_amount", t.float },
  { "status", t.string, server_default = "pending" },
})
]]

local project = S.models_project

-- the op calls of a generated function, in order
local function calls_in(text, fn)
  local body = text:match("function M%." .. fn .. "%(op%)\n(.-)\nend\n") or ""
  local out = {}
  for line in body:gmatch("[^\n]+") do
    if not line:match("^%s*%-%-") then
      for name in line:gmatch("op%.([%w_]+)%(") do
        if name ~= "f" and name ~= "text" and name ~= "foreign_key" and name ~= "check" then out[#out + 1] = name end
      end
    end
  end
  return out
end

for _, T in ipairs(S.targets()) do
  describe("#" .. T.name .. " autogenerate", function()
    it("kit + SPEC 5 models from an empty database: generate, upgrade, check 0, luamig test, downgrade to empty", function()
      local dir = project(SPEC5)
      local url, db = T.fresh(dir)
      local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
      local r = run("check")
      assert.equal(3, r.code)
      assert.equal("luamig: 6 difference(s) between the models and the database", r.errline)
      assert.same({ "+ table artifacts", "+ table configs", "+ table config_artifacts", "+ table users", "+ table orders",
        "+ table tasks" }, r.lines)
      r = run("revision --autogenerate -m initial --rev-id m1")
      assert.equal(0, r.code, r.err)
      assert.same({ "versions/m1.lua" }, r.lines)
      local text = S.read(dir .. "/versions/m1.lua")
      assert.same({ "create_table", "create_index", "create_index", "create_table", "create_index", "create_table",
        "create_table", "create_index", "create_table", "create_index", "create_table" }, calls_in(text, "upgrade"))
      assert.same({ "drop_table", "drop_index", "drop_table", "drop_index", "drop_table", "drop_table", "drop_index",
        "drop_table", "drop_index", "drop_index", "drop_table" }, calls_in(text, "downgrade"))
      r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err)
      assert.same({}, r.lines)
      -- the same file written against the migrated database has nothing in it
      r = run("revision --autogenerate -m nothing --rev-id m2")
      assert.equal(0, r.code, r.err)
      assert.matches("No changes in schema detected", r.err)
      assert.same({}, calls_in(S.read(dir .. "/versions/m2.lua"), "upgrade"))
      os.remove(dir .. "/versions/m2.lua")
      if T.name == "sqlite" then
        assert.equal(0, run("test").code)
      else
        local scratch, surl = S.pg_database()
        local tr = S.run(S.q("--url=" .. url) .. " test " .. S.q("--url=" .. surl), { cwd = dir })
        assert.equal(0, tr.code, tr.err)
        S.pg_drop(scratch)
      end
      r = run("downgrade base")
      assert.equal(0, r.code, r.err)
      assert.same({ "luamig_history", "luamig_version" }, T.tables(db))
      -- behind the scripts: check and autogenerate refuse
      r = run("check")
      assert.equal(1, r.code)
      assert.matches("^luamig: database is not at head: .* is at <base>, the scripts at m1; run `luamig upgrade head` first$", r.errline)
      S.rmrf(dir)
      T.drop(db)
    end)

    it("an Entity's updated_at trigger: generated, kept current on UPDATE, dropped and brought back", function()
      local with = [[
local model = require("luamig.model")
local t = require("luamig.types")
model.Entity("posts", { { "title", t.string(80) } }, { updated_at_trigger = true })
]]
      local dir = project(with)
      local url, db = T.fresh(dir)
      local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
      assert.equal(0, run("revision --autogenerate -m posts --rev-id p1").code)
      assert.same({ "create_table", "execute" .. (T.name == "postgres" and "\0execute" or "") },
        { calls_in(S.read(dir .. "/versions/p1.lua"), "upgrade")[1], table.concat({ table.unpack(calls_in(S.read(dir
          .. "/versions/p1.lua"), "upgrade"), 2) }, "\0") })
      local r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      assert.equal(0, run("check").code)
      T.query(db, "INSERT INTO posts (id, title, created_at, updated_at) VALUES ('01J00000000000000000000000', 'a', "
        .. "'2000-01-01 00:00:00', '2000-01-01 00:00:00')")
      T.query(db, "UPDATE posts SET title = 'b'")
      assert.equal("1", T.query(db, "SELECT count(*) FROM posts WHERE updated_at > '2001-01-01' AND created_at < '2001-01-01'"))
      S.write(dir .. "/myapp/models.lua", (with:gsub(", { updated_at_trigger = true }", "")))
      r = run("check")
      assert.equal(3, r.code)
      assert.same({ "- trigger trg_posts_updated_at" }, r.lines)
      assert.equal(0, run("revision --autogenerate -m untrigger --rev-id p2").code)
      assert.equal(0, run("upgrade head").code)
      assert.equal(0, run("check").code)
      assert.equal(0, run("downgrade -1").code)
      os.remove(dir .. "/versions/p2.lua")
      S.write(dir .. "/myapp/models.lua", with)
      assert.equal(0, run("check").code)
      assert.equal(0, run("downgrade base").code)
      assert.same({ "luamig_history", "luamig_version" }, T.tables(db))
      if T.name == "postgres" then
        assert.equal("0", T.query(db, "SELECT count(*) FROM pg_proc WHERE proname = 'set_updated_at_posts'"))
      end
      S.rmrf(dir)
      T.drop(db)
    end)

    it("kit helpers make the same op values as the generated migration for the kit models", function()
      local dir = project([[require("luamig.kit.models")]])
      local url, db = T.fresh(dir)
      local r = S.run(T.url_arg(url) .. "revision --autogenerate -m kit --rev-id k1", { cwd = dir })
      assert.equal(0, r.code, r.err)
      -- the luamig.core of this build (under --sanitize an instrumented one, which needs the sanitizer runtimes first)
      local preload = os.getenv("LD_PRELOAD") and string.format("LD_PRELOAD=%s ASAN_OPTIONS=%s ",
        S.q(os.getenv("LD_PRELOAD")), S.q(os.getenv("ASAN_OPTIONS") or "")) or ""
      local code, out = S.sh(string.format("cd %s && %sLUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s", S.q(dir), preload,
        S.q(S.root .. "/lua/?.lua;" .. S.root .. "/lua/?/init.lua;;"), S.q((os.getenv("LUAMIG_BUILD_DIR") or (S.root .. "/build")) .. "/lib/?.so;;"),
        S.q(S.root .. "/tests/tools/compare_kit.lua"), S.q(T.name == "sqlite" and "sqlite" or "postgresql")))
      assert.equal(0, code, out)
      assert.matches("^same %d+ ops up, %d+ ops down\n$", out)
      S.rmrf(dir)
      T.drop(db)
    end)
  end)

  -- The change table: a base schema, then one change at a time.
  local BASE = [[
local model = require("luamig.model")
local t = require("luamig.types")
model.Table("authors", {
  { "id", t.integer, primary_key = true },
  { "name", t.string(50) },
})
model.Table("books", {
  { "id", t.integer, primary_key = true },
  { "title", t.string(100) },
  { "author_id", t.integer, nullable = true },
  { "pages", t.integer, nullable = true },
  { "price", t.numeric(8, 2), nullable = true },
  { "status", t.string(20), server_default = "draft" },
  { "code", t.string(10), nullable = true },
  { "isbn", t.string(20), nullable = true, index = true },
  { "flag", t.boolean, nullable = true, server_default = false },
  model.unique { "title", "code", name = "uq_books_title_code" },
  model.foreign_key({ "author_id" }, "authors", { "id" }, { name = "fk_books_author", ondelete = "CASCADE" }),
  model.check("pages > 0", { name = "pages_positive" }),
})
model.Table("notes", {
  { "id", t.integer, primary_key = true },
  { "body", t.text, nullable = true, index = true },
})
]]

  local function replace(s, old, new)
    local a, b = s:find(old, 1, true)
    assert(a, "no '" .. old .. "' in the base models")
    return s:sub(1, a - 1) .. new .. s:sub(b + 1)
  end

  local BOOKS_END = '  model.check("pages > 0", { name = "pages_positive" }),\n'
  local CASES = {
    { "add a table", BASE .. 'model.Table("tags", { { "id", t.integer, primary_key = true }, { "label", t.text } })\n',
      { "create_table" } },
    { "add a table with an index", BASE .. 'model.Table("tags", { { "id", t.integer, primary_key = true }, '
      .. '{ "label", t.text, index = true } })\n', { "create_table", "create_index" } },
    { "drop a table", replace(BASE, 'model.Table("notes", {\n  { "id", t.integer, primary_key = true },\n'
      .. '  { "body", t.text, nullable = true, index = true },\n})\n', ""), { "drop_index", "drop_table" } },
    { "add a nullable column", replace(BASE, BOOKS_END, BOOKS_END .. '  { "subtitle", t.text, nullable = true },\n'),
      { "add_column" } },
    { "add a NOT NULL column with a default", replace(BASE, BOOKS_END, BOOKS_END
      .. '  { "copies", t.integer, server_default = 1 },\n'), { "add_column" } },
    { "add a column with an index", replace(BASE, BOOKS_END, BOOKS_END
      .. '  { "shelf", t.string(8), nullable = true, index = true },\n'), { "add_column", "create_index" } },
    { "add a column with a foreign key", replace(BASE, BOOKS_END, BOOKS_END
      .. '  { "editor_id", t.integer, nullable = true, references = "authors.id" },\n'), { "add_column", "create_foreign_key" } },
    { "drop a column", replace(BASE, '  { "price", t.numeric(8, 2), nullable = true },\n', ""), { "drop_column" } },
    { "drop an indexed column", replace(BASE, '  { "isbn", t.string(20), nullable = true, index = true },\n', ""),
      { "drop_index", "drop_column" } },
    { "a rename comes out as add + drop", replace(BASE, '{ "code", t.string(10), nullable = true }',
      '{ "ref", t.string(10), nullable = true }'):gsub('"title", "code"', '"title", "ref"'),
      { "drop_constraint", "add_column", "create_unique_constraint", "drop_column" } },
    { "add an index", replace(BASE, BOOKS_END, BOOKS_END .. '  model.index("ix_books_status", { "status" }),\n'),
      { "create_index" } },
    { "add a unique index", replace(BASE, BOOKS_END, BOOKS_END .. '  model.index("ix_books_code", { "code" }, { unique = true }),\n'),
      { "create_index" } },
    { "drop an index", replace(BASE, '{ "isbn", t.string(20), nullable = true, index = true }',
      '{ "isbn", t.string(20), nullable = true }'), { "drop_index" } },
    { "make an index unique", replace(BASE, '{ "isbn", t.string(20), nullable = true, index = true }',
      '{ "isbn", t.string(20), nullable = true, index = true, unique = true }'), { "drop_index", "create_index" } },
    { "add a unique constraint", replace(BASE, BOOKS_END, BOOKS_END .. '  model.unique { "isbn", name = "uq_books_isbn" },\n'),
      { "create_unique_constraint" } },
    { "drop a unique constraint", replace(BASE, '  model.unique { "title", "code", name = "uq_books_title_code" },\n', ""),
      { "drop_constraint" } },
    { "add a foreign key", replace(BASE, BOOKS_END, BOOKS_END
      .. '  model.foreign_key({ "pages" }, "authors", { "id" }, { name = "fk_books_pages" }),\n'), { "create_foreign_key" } },
    { "drop a foreign key", replace(BASE, '  model.foreign_key({ "author_id" }, "authors", { "id" }, { name = "fk_books_author", ondelete = "CASCADE" }),\n', ""),
      { "drop_constraint" } },
    { "change a foreign key's ON DELETE", replace(BASE, 'ondelete = "CASCADE"', 'ondelete = "SET NULL"'),
      { "drop_constraint", "create_foreign_key" } },
    { "add a check constraint", replace(BASE, BOOKS_END, BOOKS_END .. '  model.check("price >= 0", { name = "price_positive" }),\n'),
      { "create_check_constraint" } },
    { "drop a check constraint", replace(BASE, BOOKS_END, ""), { "drop_constraint" } },
    { "change a type: integer to biginteger", replace(BASE, '{ "pages", t.integer, nullable = true }',
      '{ "pages", t.biginteger, nullable = true }'), { "alter_column" } },
    { "change a type: numeric to float", replace(BASE, '{ "price", t.numeric(8, 2), nullable = true }',
      '{ "price", t.float, nullable = true }'), { "alter_column" } },
    { "change a type: integer to string", replace(BASE, '{ "author_id", t.integer, nullable = true }',
      '{ "author_id", t.string(20), nullable = true }'):gsub('  model%.foreign_key%b(),\n', ""), { "drop_constraint", "alter_column" } },
    { "change a VARCHAR's length (on SQLite too, as Alembic compares it; a rebuild there)", replace(BASE,
      '{ "name", t.string(50) }', '{ "name", t.string(80) }'), { "alter_column" } },
    { "NULL to NOT NULL", replace(BASE, '{ "code", t.string(10), nullable = true }', '{ "code", t.string(10) }'),
      { "alter_column" } },
    { "NOT NULL to NULL", replace(BASE, '{ "title", t.string(100) }', '{ "title", t.string(100), nullable = true }'),
      { "alter_column" } },
    { "add a server default", replace(BASE, '{ "pages", t.integer, nullable = true }',
      '{ "pages", t.integer, nullable = true, server_default = 10 }'), { "alter_column" } },
    { "drop a server default", replace(BASE, '{ "status", t.string(20), server_default = "draft" }',
      '{ "status", t.string(20) }'), { "alter_column" } },
    { "change a server default", replace(BASE, 'server_default = "draft"', 'server_default = "new"'), { "alter_column" } },
    { "change a boolean default", replace(BASE, 'server_default = false', 'server_default = true'), { "alter_column" } },
  }

  describe("#" .. T.name .. " autogenerate: one change at a time", function()
    for i, case in ipairs(CASES) do
      local name, after, expect = case[1], case[2], case[3]
      if expect[T.name] then expect = expect[T.name] end
      it(string.format("%02d %s", i, name), function()
        local dir = project(BASE)
        local url, db = T.fresh(dir)
        local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
        assert.equal(0, run("revision --autogenerate -m base --rev-id m1").code)
        local r = run("upgrade head")
        assert.equal(0, r.code, r.err)
        T.query(db, "INSERT INTO authors (id, name) VALUES (1, 'a'), (2, 'b')")
        T.query(db, "INSERT INTO books (id, title, author_id, pages, price, status, code, isbn) VALUES "
          .. "(1, 'one', 1, 1, 9.5, 'draft', 'c1', 'i1'), (2, 'two', 2, 2, 1.25, 'draft', 'c2', 'i2')")
        local before = T.name == "postgres" and S.pg_schema(db) or nil
        S.write(dir .. "/myapp/models.lua", after)
        r = run("revision --autogenerate -m change --rev-id m2")
        assert.equal(0, r.code, r.err)
        local text = S.read(dir .. "/versions/m2.lua")
        assert.same(expect, calls_in(text, "upgrade"), text)
        if name:match("rename") then assert.matches("%-%- a rename%? if books%.code was renamed to ref", text) end
        r = run("upgrade head")
        assert.equal(0, r.code, r.err .. "\n" .. text)
        r = run("check")
        assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
        -- the rows are still there
        assert.equal("2", T.query(db, "SELECT count(*) FROM books"))
        r = run("downgrade -1")
        assert.equal(0, r.code, r.err .. "\n" .. text)
        os.remove(dir .. "/versions/m2.lua")
        S.write(dir .. "/myapp/models.lua", BASE)
        r = run("check")
        assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
        if before then assert.equal(before, S.pg_schema(db)) end
        assert.equal("2", T.query(db, "SELECT count(*) FROM books"))
        S.rmrf(dir)
        T.drop(db)
      end)
    end
  end)
end
