-- What real Alembic histories say that the op API must too: constraints named by the database (name = false,
-- naming_convention = none), PostgreSQL enum types of their own (create_enum / drop_enum, labels checked),
-- non-native enums, batch naming conventions for unnamed constraints, alter_column's autoincrement, and t.raw per
-- dialect. On SQLite and PostgreSQL alike.
local S = require("support")

local function project(ini_extra, migrations, models)
  local dir = S.tmpdir()
  S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(rev)s\nmodels = myapp.models\n"
    .. (ini_extra or ""))
  S.write(dir .. "/myapp/models.lua", models or "")
  os.execute("mkdir -p " .. S.q(dir .. "/versions"))
  S.chain(dir, migrations)
  return dir
end

local UNNAMED = [[  op.create_table("p", { { "id", t.integer, nullable = false }, op.primary_key { "id" } })
  op.create_table("t", {
    { "id", t.integer, nullable = false },
    { "code", t.string(10) },
    { "p_id", t.integer },
    { "n", t.integer },
    op.primary_key { "id", name = false },
    op.unique { "code", name = false },
    op.foreign_key({ "p_id" }, "p", { "id" }, { name = false }),
    op.check("n > 0", { name = false }),
  })]]

for _, T in ipairs(S.targets()) do
  local pg = T.name == "postgres"
  describe("#" .. T.name .. " op parity", function()
    local dir, url, db
    local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
    local function ok(args)
      local r = run(args)
      assert.are.equal(0, r.code, args .. ": " .. r.err)
      return r
    end
    after_each(function()
      S.rmrf(dir)
      T.drop(db)
    end)

    it("name = false leaves constraint names to the database; later migrations drop them by those names", function()
      local drop = pg and [[  op.drop_constraint("t_code_key", "t", { type = "unique" })
  op.drop_constraint("t_p_id_fkey", "t", { type = "foreignkey" })
  op.drop_constraint("t_n_check", "t", { type = "check" })]] or [[  op.batch_alter_table("t", function(batch)
    batch.drop_constraint("uq_t_code", { type = "unique" })
    batch.drop_constraint("fk_t_p_id_p", { type = "foreignkey" })
  end, { naming_convention = { uq = "uq_%(table_name)s_%(column_0_name)s",
    fk = "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s" } })]]
      dir = project(nil, { UNNAMED, drop })
      url, db = T.fresh(dir)
      ok("upgrade +1")
      if pg then
        assert.are.equal("t_code_key\nt_n_check\nt_p_id_fkey\nt_pkey", T.query(db,
          "SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY 1"))
      else
        local sql = T.query(db, "SELECT sql FROM sqlite_master WHERE name = 't'")
        assert.falsy(sql:find("CONSTRAINT", 1, true), sql)
      end
      ok("upgrade head")
      -- the unique and the foreign key are gone: duplicates and dangling ids go in
      T.query(db, "INSERT INTO t (id, code, p_id, n) VALUES (1, 'x', 77, 1), (2, 'x', 78, 1)")
      assert.are.equal("2", T.query(db, "SELECT count(*) FROM t"))
    end)

    it("naming_convention = none and MetaData{ naming_convention = false }: check compares unnamed constraints by columns", function()
      dir = project("naming_convention = none\n", {}, [[
local model = require("luamig.model")
local t = require("luamig.types")
local md = model.MetaData{ naming_convention = false }
model.Table("p", { { "id", t.integer, nullable = false }, model.primary_key { "id" } }, { metadata = md })
model.Table("q", {
  { "id", t.integer, nullable = false, primary_key = true },
  { "code", t.string(10), unique = true },
  { "p_id", t.integer, references = "p.id" },
  { "n", t.integer, index = true },
}, { metadata = md })
return md
]])
      S.write(dir .. "/env.lua", 'return { target_metadata = require("myapp.models") }\n')
      url, db = T.fresh(dir)
      local r = ok("revision --autogenerate -m one --rev-id m1")
      local text = S.read(dir .. "/versions/m1.lua")
      assert.falsy(text:find("uq_q_code", 1, true), text)
      assert.truthy(text:find("ix_q_n", 1, true), text)
      ok("upgrade head")
      r = run("check")
      assert.are.equal(0, r.code, r.out .. r.err)
      if pg then
        assert.are.equal("p_pkey\nq_code_key\nq_p_id_fkey\nq_pkey", T.query(db,
          "SELECT conname FROM pg_constraint WHERE conrelid IN ('p'::regclass, 'q'::regclass) ORDER BY 1"))
      end
    end)

    it("create_enum / drop_enum with if_not_exists / if_exists; an enum reused only with the same labels", function()
      dir = project(nil, {
        [[  op.create_enum("mood", { "happy", "sad" }, { if_not_exists = true })
  op.create_enum("mood", { "happy", "sad" }, { if_not_exists = true })
  op.create_table("a", { { "id", t.integer }, { "m", t.enum{ "happy", "sad", name = "mood" } } })]],
        [[  op.create_table("b", { { "id", t.integer }, { "m", t.enum{ "happy", "sad", name = "mood" } } })]],
        [[  op.create_table("c", { { "id", t.integer }, { "m", t.enum{ "calm", "angry", name = "mood" } } })]],
      })
      url, db = T.fresh(dir)
      ok("upgrade +2")
      if pg then
        assert.are.equal("happy,sad", T.query(db, "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum"))
        local r = run("upgrade head")
        assert.are.equal(1, r.code)
        assert.truthy(r.errline:find("enum type mood exists with the labels ('happy', 'sad'), not ('calm', 'angry')", 1,
          true), r.errline)
        assert.are.equal(0, tonumber(T.query(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'")))
      else
        ok("upgrade head")
      end
    end)

    it("drop_enum: if_exists twice is fine; without it a missing type fails (PostgreSQL; nothing on SQLite)", function()
      dir = project(nil, { [[  op.create_enum("mood", { "a" })
  op.drop_enum("mood", { if_exists = true })
  op.drop_enum("mood", { if_exists = true })]], [[  op.drop_enum("mood")]] })
      url, db = T.fresh(dir)
      ok("upgrade +1")
      local r = run("upgrade head")
      assert.are.equal(pg and 1 or 0, r.code, r.err)
      if pg then assert.truthy(r.errline:find('type "mood" does not exist', 1, true), r.errline) end
    end)

    it("non-native enums: create_constraint = false and native_enum = false", function()
      dir = project(nil, { [[  op.create_table("e", {
    { "id", t.integer },
    { "free", t.enum{ "a", "bb", name = "free_kind", create_constraint = false, native_enum = false } },
    { "checked", t.enum{ "a", "bb", name = "checked_kind", native_enum = false } },
  })]] }, [[
local model = require("luamig.model")
local t = require("luamig.types")
model.Table("e", {
  { "id", t.integer, nullable = true },
  { "free", t.enum{ "a", "bb", name = "free_kind", create_constraint = false, native_enum = false }, nullable = true },
  { "checked", t.enum{ "a", "bb", name = "checked_kind", native_enum = false }, nullable = true },
})
]])
      url, db = T.fresh(dir)
      ok("upgrade head")
      T.query(db, "INSERT INTO e (id, free, checked) VALUES (1, 'zz', 'a')")
      -- the CHECK of native_enum = false refuses a value outside the enum
      assert.is_false((pcall(T.query, db, "INSERT INTO e (checked) VALUES ('zz')")))
      if pg then
        assert.are.equal("character varying|2\ncharacter varying|2", T.query(db, "SELECT data_type, "
          .. "character_maximum_length FROM information_schema.columns WHERE table_name = 'e' AND column_name <> 'id' "
          .. "ORDER BY column_name"))
        assert.are.equal("0", T.query(db, "SELECT count(*) FROM pg_type WHERE typname IN ('free_kind', 'checked_kind')"))
      end
      local r = run("check")
      assert.are.equal(0, r.code, r.out .. r.err)
    end)

    it("alter_column takes autoincrement and changes nothing; other unknown keys are refused", function()
      dir = project(nil, { [[  op.create_table("k", { { "id", t.integer, nullable = false }, op.primary_key { "id" } })]],
        [[  op.alter_column("k", "id", { autoincrement = true, existing_type = t.integer })]],
        [[  op.alter_column("k", "id", { autoincrements = true })]] })
      url, db = T.fresh(dir)
      ok("upgrade +2")
      local r = run("upgrade head")
      assert.are.equal(1, r.code)
      assert.truthy(r.errline:find("alter_column: unknown option 'autoincrements'", 1, true), r.errline)
    end)

    it("t.raw per dialect is rendered and compared by its text", function()
      local raw = 't.raw{ sqlite = "TEXT", postgresql = "INET" }'
      dir = project(nil, { '  op.create_table("h", { { "id", t.integer }, { "addr", ' .. raw .. ' } })' }, [[
local model = require("luamig.model")
local t = require("luamig.types")
model.Table("h", { { "id", t.integer, nullable = true }, { "addr", ]] .. raw .. [[, nullable = true } })
]])
      url, db = T.fresh(dir)
      ok("upgrade head")
      if pg then
        assert.are.equal("inet", T.query(db, "SELECT data_type FROM information_schema.columns WHERE table_name = 'h' "
          .. "AND column_name = 'addr'"))
      else
        assert.same({ "id INTEGER 0 - 0", "addr TEXT 0 - 0" }, S.columns(db, "h"))
      end
      local r = run("check")
      assert.are.equal(0, r.code, r.out .. r.err)
      -- a model whose raw type differs is a difference, rendered back as t.raw{ ... }
      S.write(dir .. "/myapp/models.lua", (S.read(dir .. "/myapp/models.lua"):gsub('"INET"', '"CIDR"'):gsub('"TEXT"', '"BLOB"')))
      r = run("revision --autogenerate -m raw --rev-id m9")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(S.read(dir .. "/versions/m9.lua"):find('t.raw{ postgresql = "CIDR", sqlite = "BLOB" }', 1, true))
    end)
  end)
end
