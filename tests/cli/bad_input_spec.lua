-- Bad input: one clear line naming the culprit, the right exit code, and the database untouched.
local S = require("support")

describe("#cli bad input", function()
  local dir, db

  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "first", up = [[
  op.create_table("things", { { "id", t.integer, primary_key = true } })]], down_body = [[  op.drop_table("things")]] })
  end)
  after_each(function() S.rmrf(dir) end)

  local function run(args, env) return S.run(args, { cwd = dir, env = env }) end

  -- expect(args, code, first_line_or_pattern [, env]): runs, compares, and checks the database did not change
  local function expect(args, code, line, env)
    local before = S.exists(db) and S.dump(db) or nil
    local r = run(args, env)
    assert.equal(code, r.code, r.err)
    if line:sub(1, 1) == "^" then assert.matches(line, r.first) else assert.equal(line, r.first) end
    assert.is_nil(r.err:find("stack traceback", 1, true), "no traceback without --verbose")
    local after = S.exists(db) and S.dump(db) or nil
    if before then assert.equal(before, after) end
    return r
  end

  it("a syntax error in a migration names the file and line (exit 1)", function()
    assert.equal(0, run("upgrade head").code)
    S.write(dir .. "/versions/bbbb_broken.lua", "local M = {\n  revision = 'bbbb00000002'\n  down_revision = 'aaaa00000001',\n}\nreturn M\n")
    expect("upgrade head", 1, "luamig: cannot load versions/bbbb_broken.lua:3: '}' expected (to close '{' at line 1) near 'down_revision'")
  end)

  it("a runtime error while loading a migration names the file and line", function()
    S.write(dir .. "/versions/cccc.lua", "local x = nil\nreturn x.field\n")
    expect("heads", 1, "luamig: error while running versions/cccc.lua: versions/cccc.lua:2: attempt to index a nil value (local 'x')")
  end)

  it("a migration of the wrong shape names the field", function()
    S.write(dir .. "/versions/dddd.lua", "return 42\n")
    expect("heads", 1, "luamig: versions/dddd.lua: a migration file must return a table (got number)")
    S.write(dir .. "/versions/dddd.lua", "return { revision = 'dddd00000001', down_revision = 'aaaa00000001', upgrade = function() end }\n")
    -- read-only commands take literal revision fields from the text; running the file (upgrade) checks its shape,
    -- before the first step
    assert.equal(0, run("heads").code)
    expect("upgrade head", 1, "luamig: versions/dddd.lua: 'downgrade' must be a function")
    assert.same({}, S.tables(db))
    S.write(dir .. "/versions/dddd.lua", "return { revision = 'bad-id', upgrade = function() end, downgrade = function() end }\n")
    expect("heads", 1, "luamig: versions/dddd.lua: revision id 'bad-id' contains one of the illegal characters @ - + : or white space")
    S.write(dir .. "/versions/dddd.lua", "return { revision = 'dddd00000001', down_revision = 7, upgrade = function() end, downgrade = function() end }\n")
    expect("heads", 1, "luamig: versions/dddd.lua: down_revision must be nil, a string or a list of strings")
  end)

  it("one migration file cannot leak globals into another", function()
    S.write(dir .. "/versions/a0_leak.lua", "leaked = 1\nreturn { revision = 'a0', upgrade = function() end, downgrade = function() end }\n")
    S.write(dir .. "/versions/a1_read.lua", "assert(leaked == nil, 'saw a global')\n"
      .. "return { revision = 'a1', down_revision = 'a0', upgrade = function() end, downgrade = function() end }\n")
    local r = run("history")
    assert.equal(0, r.code, r.err)
  end)

  it("an unknown, ambiguous or too short target is an error naming it (exit 1)", function()
    assert.equal(0, run("upgrade head").code)
    expect("upgrade ffff", 1, "luamig: No such revision or branch 'ffff'")
    expect("upgrade aa", 1, "luamig: No such revision or branch 'aa'; a partial revision id needs at least four characters")
    expect("downgrade zzzz9", 1, "luamig: No such revision or branch 'zzzz9'")
    expect("upgrade 'a b'", 1, "^luamig: 'a b' is not a revision target")
    expect("upgrade -1", 1, "luamig: '-1' is a step back: use `luamig downgrade -1`")
  end)

  it("several heads make `head` an error listing them", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000001", down = "aaaa00000001", msg = "left" })
    S.migration(dir .. "/versions", { rev = "cccc00000001", down = "aaaa00000001", msg = "right" })
    expect("upgrade head", 1, "luamig: Multiple heads are present (bbbb00000001, cccc00000001); merge them with `luamig merge heads`, or name one (or `heads` for all)")
    local r = run("upgrade heads")
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb00000001,cccc00000001", S.versions(db))
  end)

  it("duplicate ids, missing parents and cycles name the files", function()
    S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "again", file = "zz_dup.lua" })
    expect("heads", 1, "luamig: revision aaaa00000001 is defined twice: in versions/aaaa00000001_first.lua and in versions/zz_dup.lua")
    os.remove(dir .. "/versions/zz_dup.lua")
    S.migration(dir .. "/versions", { rev = "bbbb00000001", down = "9999", msg = "orphan" })
    expect("heads", 1, "luamig: versions/bbbb00000001_orphan.lua: down_revision '9999' of revision bbbb00000001 is not a known revision")
    os.remove(dir .. "/versions/bbbb00000001_orphan.lua")
    S.migration(dir .. "/versions", { rev = "c1", down = "c2", msg = "x" })
    S.migration(dir .. "/versions", { rev = "c2", down = "c1", msg = "y" })
    expect("heads", 1, "luamig: the revisions c1, c2 form a cycle (files: versions/c1_x.lua, versions/c2_y.lua)")
  end)

  it("a malformed luamig.ini names the file and line (exit 1)", function()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nthis line is wrong\n")
    expect("current", 1, "luamig: luamig.ini:3: expected '[section]' or 'key = value', got 'this line is wrong'")
    S.write(dir .. "/luamig.ini", "[luamig]\nfile_template = %(rev\n")
    expect("revision -m x", 1, "^luamig: luamig.ini: %[luamig%] file_template: '%%' must be followed by")
    S.write(dir .. "/luamig.ini", "[somethingelse]\nx = 1\n")
    expect("current", 1, "luamig: luamig.ini has no [luamig] section (nor an [alembic] one)")
    expect("-c missing.ini current", 1, "luamig: config file missing.ini not found")
  end)

  it("a bad URL is one line naming it with the password masked (exit 1)", function()
    assert.equal(0, run("upgrade head").code)
    expect("--url nosuch://u:secret@h/d current", 1, "luamig: bad database URL 'nosuch://u:***@h/d': unknown scheme 'nosuch' (expected sqlite:// or postgresql://)")
    expect("current", 1, "luamig: bad database URL 'sqlite://host/x.db': a sqlite URL takes no host: use sqlite:///relative.db or sqlite:////absolute/path.db",
      { DATABASE_URL = "sqlite://host/x.db" })
    local r = run("--url postgresql://app:hunter2@127.0.0.1:1/prod upgrade head")
    assert.equal(1, r.code)
    assert.is_nil((r.out .. r.err):find("hunter2", 1, true))
    assert.matches("postgresql://app:%*%*%*@127%.0%.0%.1:1/prod", r.first)
    expect("--url sqlite:////nonexistent-dir/x.db upgrade head", 1, "luamig: cannot open SQLite database /nonexistent-dir/x.db: unable to open database file")
  end)

  it("a file that is not a database fails cleanly and is left alone", function()
    S.write(db, string.rep("garbage!", 512))
    local before = S.read(db)
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("luamig: cannot read the version table luamig_version: file is not a database", r.first)
    assert.equal(before, S.read(db))
  end)

  it("a database at a revision no file defines is refused", function()
    assert.equal(0, run("upgrade head").code)
    S.sql(db, "UPDATE luamig_version SET version_num = 'feedbeef0000'")
    expect("upgrade head", 1, "luamig: the database is at revision feedbeef0000, which no migration file defines")
    local cur = run("current")
    assert.same({ "feedbeef0000 (no migration file defines it)" }, cur.lines)
  end)

  it("a missing versions directory says how to start", function()
    local empty = S.tmpdir()
    local r = S.run("heads", { cwd = empty })
    assert.equal(1, r.code)
    assert.equal("luamig: no versions directory at versions (no luamig.ini here: run `luamig init migrations` to start a project)", r.first)
    S.rmrf(empty)
  end)

  it("usage errors exit 2", function()
    expect("frobnicate", 2, "luamig: unknown command 'frobnicate' (commands: init, revision, upgrade, downgrade, current, history, heads, branches, show, stamp, merge, check, verify, lint, test)")
    expect("upgrade --frob", 2, "luamig: unknown option '--frob' for 'upgrade' (see luamig upgrade --help)")
    expect("downgrade", 2, "luamig: downgrade: expected one TARGET, got 0 argument(s)")
    expect("revision", 2, "luamig: revision needs a message: luamig revision -m \"add user table\"")
    expect("-c", 2, "luamig: option -c needs a value (FILE)")
    local none = run("")
    assert.equal(2, none.code)
    assert.matches("^usage: luamig", none.first)
  end)

  it("--verbose adds the traceback of a failing migration", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "boom", up = [[  error("boom")]] })
    local r = run("-v upgrade head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("stack traceback", 1, true))
  end)
end)
