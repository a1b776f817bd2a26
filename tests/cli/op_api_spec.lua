-- The op API inside real migrations: data steps through get_bind, inline_literal, named parameters,
-- rename_table, drop_column, and the revision options --rev-id and timezone.
local S = require("support")

describe("#cli op api", function()
  local dir, db

  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
  end)
  after_each(function() S.rmrf(dir) end)

  local function run(args) return S.run(args, { cwd = dir }) end

  it("get_bind() queries and execs inside the migration's transaction", function()
    S.migration(dir .. "/versions", { rev = "a1", msg = "people", up = [[
  op.create_table("people", { { "id", t.integer, primary_key = true }, { "name", t.text, nullable = false } })
  op.bulk_insert("people", { { id = 1, name = "ada" }, { id = 2, name = "bob" } })
  local conn = op.get_bind()
  local rows = conn:query("SELECT id, name FROM people WHERE id > ? ORDER BY id", { 0 })
  for _, r in ipairs(rows) do
    conn:exec("UPDATE people SET name = :name WHERE id = :id", { name = r.name:upper(), id = r.id })
  end
  op.execute(op.text("INSERT INTO people (id, name) VALUES (3, " .. tostring(op.inline_literal("o'hara")) .. ")"))
  assert(op.dialect == "sqlite")]], down_body = [[  op.drop_table("people")]] })
    local r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    assert.equal("1|ADA\n2|BOB\n3|o'hara", S.sql(db, "SELECT id, name FROM people ORDER BY id"))
  end)

  it("a failing get_bind() statement rolls the migration back and names the statement", function()
    S.migration(dir .. "/versions", { rev = "a1", msg = "bad data step", up = [[
  op.create_table("p", { { "id", t.integer } })
  op.get_bind():query("SELECT nope FROM p")]] })
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade <base> -> a1 failed at versions/a1_bad_data_step.lua:9: no such column: nope; statement: SELECT nope FROM p", r.errline)
    assert.same({}, S.tables(db))
  end)

  it("rename_table, add/drop column and indexes round-trip through downgrade", function()
    S.migration(dir .. "/versions", { rev = "a1", msg = "t", up = [[
  op.create_table("old_name", { { "id", t.integer, primary_key = true } })]], down_body = [[  op.drop_table("old_name")]] })
    S.migration(dir .. "/versions", { rev = "a2", down = "a1", msg = "reshape", up = [[
  op.rename_table("old_name", "new_name")
  op.add_column("new_name", { "code", t.string(5), index = true })
  op.alter_column("new_name", "code", { new_column_name = "kode" })]], down_body = [[
  op.alter_column("new_name", "kode", { new_column_name = "code" })
  op.drop_index("ix_new_name_code", "new_name")
  op.drop_column("new_name", "code")
  op.rename_table("new_name", "old_name")]] })
    assert.equal(0, run("upgrade head").code)
    assert.same({ "id INTEGER 1 - 1", "kode VARCHAR(5) 0 - 0" }, S.columns(db, "new_name"))
    assert.same({ "ix_new_name_code" }, S.indexes(db, "new_name"))
    local r = run("downgrade a1")
    assert.equal(0, r.code, r.err)
    assert.same({ "id INTEGER 1 - 1" }, S.columns(db, "old_name"))
    assert.equal("a1", S.versions(db))
  end)

  it("revision honours --rev-id, timezone and truncate_slug_length", function()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(year)d_%%(rev)s_%%(slug)s\n"
      .. "timezone = Asia/Tokyo\ntruncate_slug_length = 10\n")
    os.execute("mkdir -p " .. S.q(dir .. "/versions"))
    local r = run("revision -m 'add the widget table now' --rev-id abc123def456")
    assert.equal(0, r.code, r.err)
    assert.matches("^versions/%d%d%d%d_abc123def456_add_the_%.lua$", r.lines[1])
    local text = S.read(dir .. "/" .. r.lines[1])
    assert.matches("%-%- Create Date: %d+%-%d+%-%d+ %d+:%d+:%d+%+09:00\n", text)
    local dup = run("revision -m again --rev-id abc123def456")
    assert.equal(1, dup.code)
    assert.matches("^luamig: revision abc123def456 already exists in versions/", dup.first)
    local bad = run("revision -m x --rev-id a:b")
    assert.equal(2, bad.code)
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\ntimezone = Mars/Olympus\n")
    local tz = run("revision -m x")
    assert.equal(1, tz.code)
    assert.equal("luamig: timezone: unknown time zone 'Mars/Olympus'", tz.first)
  end)

  it("takes over a database Alembic managed with version_table = alembic_version", function()
    S.sql(db, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));"
      .. "INSERT INTO alembic_version VALUES ('a1'); CREATE TABLE legacy (id INTEGER)")
    S.write(dir .. "/alembic.ini", "[alembic]\nscript_location = .\nsqlalchemy.url = sqlite+aiosqlite:///./app.db\nversion_table = alembic_version\n")
    S.migration(dir .. "/versions", { rev = "a1", msg = "legacy" })
    S.migration(dir .. "/versions", { rev = "a2", down = "a1", msg = "more", up = [[  op.add_column("legacy", { "x", t.text })]] })
    local r = S.run("-c alembic.ini upgrade head", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("a2", S.versions(db, "alembic_version"))
    assert.same({ "id INTEGER 0 - 0", "x TEXT 0 - 0" }, S.columns(db, "legacy"))
    assert.same({ "a2 (head)" }, S.run("-c alembic.ini current", { cwd = dir }).lines)
  end)
end)
