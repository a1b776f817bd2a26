-- The Alembic workflow on the built binary: init, two hand-edited revisions, upgrade, downgrade -1, upgrade +1,
-- current, history; each step checked against the SQLite schema and the version rows.
local S = require("support")

local function edit_revision(path, up, down)
  local text = assert(S.read(path))
  text = text:gsub("function M%.upgrade%(op%)\nend", "function M.upgrade(op)\n" .. up .. "\nend")
  text = text:gsub("function M%.downgrade%(op%)\nend", "function M.downgrade(op)\n" .. down .. "\nend")
  S.write(path, text)
end

describe("#cli workflow", function()
  local dir, db
  local r1, r2

  setup(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
  end)
  teardown(function() S.rmrf(dir) end)

  local function run(args) return S.run(args, { cwd = dir }) end

  it("init writes luamig.ini, a Makefile, env.lua, helpers.lua and versions/", function()
    local r = run("init migrations")
    assert.equal(0, r.code, r.err)
    for _, f in ipairs({ "luamig.ini", "Makefile", "migrations/env.lua", "migrations/helpers.lua" }) do
      assert.is_true(S.exists(dir .. "/" .. f), f)
    end
    assert.equal(0, (S.sh("test -d " .. S.q(dir .. "/migrations/versions"))))
    local mk = S.read(dir .. "/Makefile")
    assert.matches("migrate:\n\t%$%(LUAMIG%) revision %-%-autogenerate %-m \"%$%(MSG%)\"", mk)
    assert.matches("downgrade:\n\t%$%(LUAMIG%) downgrade %-1", mk)
    -- a second init refuses and writes nothing
    local again = run("init migrations")
    assert.equal(1, again.code)
    assert.equal("luamig: directory migrations is not empty; nothing written", again.first)
  end)

  it("revision -m writes files named by file_template, chained by down_revision", function()
    local a = run("revision -m 'create widgets'")
    assert.equal(0, a.code, a.err)
    r1 = a.lines[1]
    assert.matches("^migrations/versions/%d%d%d%d%d%d%d%d_%d%d%d%d_%x+_create_widgets%.lua$", r1)
    local b = run("revision -m 'add widget color'")
    assert.equal(0, b.code, b.err)
    r2 = b.lines[1]
    local id1 = r1:match("_(%x+)_create_widgets%.lua$")
    assert.equal(12, #id1)
    assert.matches('down_revision = "' .. id1 .. '"', S.read(dir .. "/" .. r2))
    assert.matches("%-%- Revises: " .. id1, S.read(dir .. "/" .. r2))
    edit_revision(dir .. "/" .. r1, [[
  op.create_table("widgets", {
    { "id", t.integer, primary_key = true },
    { "name", t.string(40), nullable = false },
  })
  op.create_index(op.f("ix_widgets_name"), "widgets", { "name" })
  op.bulk_insert("widgets", { { id = 1, name = "gear" }, { id = 2, name = "cog" } })]], [[
  op.drop_index("ix_widgets_name", "widgets")
  op.drop_table("widgets")]])
    edit_revision(dir .. "/" .. r2, [[
  op.add_column("widgets", { "color", t.string, nullable = false, server_default = "grey" })
  op.execute("UPDATE widgets SET color = ? WHERE id = ?", { "red", 1 })]], [[
  op.drop_column("widgets", "color")]])
  end)

  it("heads and history list the revisions newest first, like Alembic", function()
    local id1 = r1:match("_(%x+)_create"); local id2 = r2:match("_(%x+)_add")
    local h = run("heads")
    assert.same({ id2 .. " (head)" }, h.lines)
    local hist = run("history")
    assert.same({ id1 .. " -> " .. id2 .. " (head), add widget color", "<base> -> " .. id1 .. ", create widgets" }, hist.lines)
  end)

  it("upgrade head applies both, with a progress line each, and records them", function()
    local id1 = r1:match("_(%x+)_create"); local id2 = r2:match("_(%x+)_add")
    local r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    assert.matches("^upgrade <base> %-> " .. id1 .. ", create widgets %(%d+ ms%)\nupgrade " .. id1 .. " %-> " .. id2
      .. ", add widget color %(%d+ ms%)\n$", r.err)
    assert.same({ "id INTEGER 1 - 1", "name VARCHAR(40) 1 - 0", "color VARCHAR 1 'grey' 0" }, S.columns(db, "widgets"))
    assert.same({ "ix_widgets_name" }, S.indexes(db, "widgets"))
    assert.equal("1|gear|red\n2|cog|grey", S.sql(db, "SELECT id, name, color FROM widgets ORDER BY id"))
    assert.equal(id2, S.versions(db))
    assert.equal(id1 .. "|upgrade|applied\n" .. id2 .. "|upgrade|applied",
      S.sql(db, "SELECT revision, direction, status FROM luamig_history ORDER BY id"))
    local cs = S.sql(db, "SELECT checksum FROM luamig_history ORDER BY id LIMIT 1")
    assert.matches("^%x+$", cs)
    assert.equal(64, #cs)
    -- a second upgrade is a no-op
    local again = run("upgrade head")
    assert.equal(0, again.code)
    assert.equal("", again.err)
  end)

  it("current shows the revision marked (head)", function()
    local id2 = r2:match("_(%x+)_add")
    local r = run("current")
    assert.equal(0, r.code)
    assert.same({ id2 .. " (head)" }, r.lines)
  end)

  it("downgrade -1 reverts only the last migration", function()
    local id1 = r1:match("_(%x+)_create"); local id2 = r2:match("_(%x+)_add")
    local r = run("downgrade -1")
    assert.equal(0, r.code, r.err)
    assert.matches("^downgrade " .. id2 .. " %-> " .. id1 .. ", add widget color %(%d+ ms%)\n$", r.err)
    assert.same({ "id INTEGER 1 - 1", "name VARCHAR(40) 1 - 0" }, S.columns(db, "widgets"))
    assert.equal(id1, S.versions(db))
    assert.same({ id1 }, run("current").lines)
    local hist = run("history -i")
    assert.same({ id1 .. " -> " .. id2 .. " (head), add widget color", "<base> -> " .. id1 .. " (current), create widgets" }, hist.lines)
  end)

  it("upgrade +1 re-applies it", function()
    local id2 = r2:match("_(%x+)_add")
    local r = run("upgrade +1")
    assert.equal(0, r.code, r.err)
    assert.equal(id2, S.versions(db))
    assert.equal(3, #S.columns(db, "widgets"))
    local plus = run("upgrade +1")
    assert.equal(1, plus.code)
    assert.equal("luamig: Relative revision +1 didn't produce 1 migrations", plus.first)
  end)

  it("downgrade base empties the schema but keeps the version table, as Alembic does", function()
    local r = run("downgrade base")
    assert.equal(0, r.code, r.err)
    assert.same({ "luamig_history", "luamig_version" }, S.tables(db))
    assert.equal("", S.versions(db))
    assert.same({}, run("current").lines)
    local down = run("downgrade -1")
    assert.equal(1, down.code)
    assert.equal("luamig: Relative revision -1 didn't produce 1 migrations", down.first)
  end)

  it("upgrades to a revision prefix and reports JSON for current, heads and history", function()
    local id1 = r1:match("_(%x+)_create"); local id2 = r2:match("_(%x+)_add")
    local r = run("upgrade " .. id1:sub(1, 6))
    assert.equal(0, r.code, r.err)
    assert.equal(id1, S.versions(db))
    local cur = run("current --json")
    assert.equal(0, cur.code)
    assert.matches('^{"current":%[{"branch_labels":%[%],"depends_on":%[%],"down_revisions":%[%],"is_branch_point":false,'
      .. '"is_current":true,"is_head":false,"is_merge_point":false,"known":true,"message":"create widgets",'
      .. '"path":"migrations/versions/[^"]+","revision":"' .. id1 .. '"}%],"unfinished":%[%],"url":"sqlite:///%./app%.db"}\n$', cur.out)
    assert.matches('"revision":"' .. id2 .. '"', run("heads --json").out)
    local hist = run("--json history")
    assert.matches('^{"history":%[{"branch_labels":%[%],"depends_on":%[%],"down_revisions":%["' .. id1 .. '"%]', hist.out)
  end)

  it("per-command --help exits 0 and names the command's usage", function()
    for _, c in ipairs({ "init", "revision", "upgrade", "downgrade", "current", "history", "heads", "branches", "show",
      "stamp", "merge", "verify", "test" }) do
      local r = run(c .. " --help")
      assert.equal(0, r.code, c)
      assert.matches("^usage: luamig " .. c, r.out)
    end
    local v = run("--version")
    assert.matches("^luamig %d+%.%d+%.%d+", v.out)
  end)
end)
