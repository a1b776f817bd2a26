-- luamig verify: applied migrations against their files, through recorded SHA-256 checksums.
local S = require("support")

describe("#cli verify", function()
  local dir, db, f1, f2
  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    f1 = S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "one", up = [[  op.create_table("a", { { "id", t.integer } })]] })
    f2 = S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "two",
      up = [[  op.create_table("b", { { "id", t.integer } })]] })
    assert.equal(0, S.run("upgrade head", { cwd = dir }).code)
  end)
  after_each(function() S.rmrf(dir) end)
  local function run(args) return S.run(args, { cwd = dir }) end

  it("exits 0 when every applied file is as it was", function()
    local r = run("verify")
    assert.equal(0, r.code, r.err)
    assert.equal("2 applied migration(s) match their files\n", r.err)
  end)

  it("exits 3 naming an applied file that was edited", function()
    S.write(f1, S.read(f1):gsub("create_table%(\"a\"", "create_table(\"a2\""))
    local r = run("verify")
    assert.equal(3, r.code)
    assert.matches("^aaaa00000001: versions/aaaa00000001_one%.lua changed since it was applied %(SHA%-256 %x+%.%.%. then, %x+%.%.%. now%)$", r.lines[1])
    assert.equal("luamig: 1 applied migration(s) differ from their files: aaaa00000001", r.errline)
    local j = run("--json verify")
    assert.matches('"problem":"changed"', j.out)
  end)

  it("exits 0 after line endings alone changed to CRLF", function()
    S.write(f2, (S.read(f2):gsub("\n", "\r\n")))
    local r = run("verify")
    assert.equal(0, r.code, r.out .. r.err)
  end)

  it("exits 3 when an applied revision has no file", function()
    os.remove(f2)
    local r = run("verify")
    assert.equal(3, r.code)
    assert.equal("bbbb00000002: applied, but no migration file defines it", r.lines[1])
  end)

  it("does not count a file that is not applied yet, nor a stamped one", function()
    S.migration(dir .. "/versions", { rev = "cccc00000003", down = "bbbb00000002", msg = "three" })
    assert.equal(0, run("verify").code)
    assert.equal(0, run("stamp cccc00000003").code)
    local r = run("verify")
    assert.equal(0, r.code)
    assert.matches("1 applied without a recorded checksum", r.err)
  end)
end)
