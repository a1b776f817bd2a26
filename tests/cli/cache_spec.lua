-- The caches in each versions directory: .luamig-cache (the revision fields a scan read) and .luamig-code (each
-- file's compiled chunk and checksum). Whatever they hold, luamig must run what the files say now.
local S = require("support")

local function sha256(path)
  local code, out = S.sh("sha256sum " .. S.q(path))
  assert(code == 0, out)
  return out:match("^(%x+)")
end

describe("#cli revision and code caches", function()
  local dir, db, f1, f2
  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    f1 = S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "one",
      up = [[  op.create_table("a", { { "id", t.integer } })]], down_body = [[  op.drop_table("a")]] })
    f2 = S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "two",
      up = [[  op.create_table("b", { { "id", t.integer } })]], down_body = [[  op.drop_table("b")]] })
  end)
  after_each(function() S.rmrf(dir) end)
  local function run(args, cwd) return S.run(args, { cwd = cwd or dir }) end
  local function checksums()
    return S.sql(db, "SELECT revision || ' ' || checksum FROM luamig_history WHERE direction = 'upgrade' ORDER BY id")
  end

  it("are written by a run and give the same results when read back", function()
    assert.equal(0, run("upgrade head").code)
    assert.is_true(S.exists(dir .. "/versions/.luamig-cache"))
    assert.is_true(S.exists(dir .. "/versions/.luamig-code"))
    local first = checksums()
    assert.equal("aaaa00000001 " .. sha256(f1) .. "\nbbbb00000002 " .. sha256(f2), first)
    assert.equal(0, run("downgrade base").code)
    assert.same({ "luamig_history", "luamig_version" }, S.tables(db))
    -- from the caches now: the same tables, the same checksums
    assert.equal(0, run("upgrade head").code)
    assert.same({ "a", "b", "luamig_history", "luamig_version" }, S.tables(db))
    assert.equal(first .. "\n" .. first, checksums())
    assert.equal("bbbb00000002 (head)", run("current").lines[1])
  end)

  -- rewrite_code(fn): passes each .luamig-code entry through fn(entry) (fields name, sig, sum, first, chunkname,
  -- code, digest) and writes the file back; returns whether fn changed one
  local function rewrite_code(fn)
    local path = dir .. "/versions/.luamig-code"
    local data = S.read(path)
    local head_end = data:find("\n", 1, true)
    local out, pos = { data:sub(1, head_end) }, head_end + 1
    local changed = false
    while pos <= #data do
      local e = {}
      e.name, e.sig, e.sum, e.first, e.chunkname, e.code, e.digest, pos = string.unpack("<s4s4s4s4s4s4s4", data, pos)
      if fn(e) then changed = true end
      out[#out + 1] = string.pack("<s4s4s4s4s4s4s4", e.name, e.sig, e.sum, e.first, e.chunkname, e.code, e.digest)
    end
    S.write(path, table.concat(out))
    return changed
  end
  local function other_chunk(e)
    local src = S.read(f1):gsub('create_table%("a"', 'create_table("from_cache"')
    return string.dump(assert(load(src, e.chunkname)))
  end

  it("serve the compiled chunk of a file while its signature holds", function()
    assert.equal(0, run("upgrade head").code)
    assert.equal(0, run("downgrade base").code)
    -- swap the chunk cached for the first file (with its digest) for one that creates another table: the next run
    -- must use it, which shows that the cache is what runs (a file's edit changes its signature; tests above cover
    -- that)
    assert.is_true(rewrite_code(function(e)
      if e.name ~= "aaaa00000001_one.lua" then return false end
      e.code = other_chunk(e)
      e.digest = require("luamig.core").digest(e.code)
      return true
    end))
    local r = run("upgrade aaaa00000001")
    assert.equal(0, r.code, r.err)
    assert.same({ "from_cache", "luamig_history", "luamig_version" }, S.tables(db))
  end)

  it("never load a cached chunk whose bytes are not the ones its digest names", function()
    assert.equal(0, run("upgrade head").code)
    assert.equal(0, run("downgrade base").code)
    -- other bytes under the old digest: the file's source runs, not the chunk
    assert.is_true(rewrite_code(function(e)
      if e.name ~= "aaaa00000001_one.lua" then return false end
      e.code = other_chunk(e)
      return true
    end))
    local r = run("upgrade aaaa00000001")
    assert.equal(0, r.code, r.err)
    assert.same({ "a", "luamig_history", "luamig_version" }, S.tables(db))
    assert.equal(0, run("downgrade base").code)
    -- every byte of each chunk flipped in turn at a few places: never a crash, always the files' own work
    for _, at in ipairs({ 1, 5, 13, 40, 100 }) do
      rewrite_code(function(e)
        if at > #e.code then return false end
        local b = e.code:byte(at) ~ 0x5a
        e.code = e.code:sub(1, at - 1) .. string.char(b) .. e.code:sub(at + 1)
        return true
      end)
      r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      assert.same({ "a", "b", "luamig_history", "luamig_version" }, S.tables(db))
      assert.equal(0, run("downgrade base").code)
    end
  end)

  it("never serve a file's old text after an edit of the same size", function()
    assert.equal(0, run("upgrade head").code)
    assert.equal(0, run("downgrade base").code)
    local before = S.read(f2)
    local after = before:gsub('create_table%("b"', 'create_table("c"')
    assert.equal(#before, #after)
    S.write(f2, after)
    assert.equal(0, run("upgrade head").code)
    assert.same({ "a", "c", "luamig_history", "luamig_version" }, S.tables(db))
    assert.equal(sha256(f2), S.sql(db, "SELECT checksum FROM luamig_history WHERE revision = 'bbbb00000002' "
      .. "AND direction = 'upgrade' ORDER BY id DESC LIMIT 1"))
    assert.equal(0, run("verify").code)
  end)

  it("notice a changed revision id, a new file and a removed one", function()
    assert.equal(0, run("heads").code)
    S.write(f2, (S.read(f2):gsub("bbbb00000002", "cccc00000002")))
    assert.equal("cccc00000002 (head)", run("heads").lines[1])
    S.migration(dir .. "/versions", { rev = "dddd00000003", down = "cccc00000002", msg = "three" })
    assert.equal("dddd00000003 (head)", run("heads").lines[1])
    os.remove(dir .. "/versions/dddd00000003_three.lua")
    assert.equal("cccc00000002 (head)", run("heads").lines[1])
    assert.equal(0, run("upgrade head").code)
    assert.equal("cccc00000002", S.versions(db))
  end)

  it("are ignored when they hold garbage or another version's data", function()
    assert.equal(0, run("upgrade head").code)
    assert.equal(0, run("downgrade base").code)
    for _, junk in ipairs({ "", "not a cache", string.rep("\0\255", 5000),
      "luamig code cache 2, luamig 0.0.0, Lua 5.4\n" .. string.rep("x", 100) }) do
      S.write(dir .. "/versions/.luamig-cache", junk)
      S.write(dir .. "/versions/.luamig-code", junk)
      local r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      assert.same({ "a", "b", "luamig_history", "luamig_version" }, S.tables(db))
      assert.equal(0, run("downgrade base").code)
    end
    -- a code cache entry whose chunk does not load: truncated in the middle of the file
    assert.equal(0, run("upgrade head").code)
    assert.equal(0, run("downgrade base").code)
    local code = S.read(dir .. "/versions/.luamig-code")
    S.write(dir .. "/versions/.luamig-code", code:sub(1, #code // 2))
    local r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb00000002", S.versions(db))
  end)

  it("keep file and line in errors raised by a cached chunk, and follow the project when it moves", function()
    S.write(f2, (S.read(f2):gsub('  op.create_table%("b".-\n', '  local x = nil\n  x.boom()\n')))
    local r = run("upgrade head")
    assert.equal(1, r.code)
    local errline = r.errline
    assert.matches("versions/bbbb00000002_two%.lua:9:", errline)
    assert.equal("aaaa00000001", S.versions(db))
    -- the second time the chunk comes from .luamig-code: the same message
    r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal(errline, r.errline)
    -- moved: the copies have other inodes, so they are compiled again and name the new place the same way
    local moved = dir .. "/moved"
    assert(os.execute("mkdir -p " .. S.q(moved) .. " && cp -a " .. S.q(dir .. "/versions") .. " " .. S.q(moved)
      .. " && cp " .. S.q(db) .. " " .. S.q(moved)))
    r = run("upgrade head", moved)
    assert.equal(1, r.code)
    assert.equal(errline, r.errline)
    -- run from elsewhere: the same files are shown by another path, and the message follows
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nurl = sqlite:///" .. db .. "\n")
    r = run("-c " .. S.q(dir .. "/luamig.ini") .. " upgrade head", moved .. "/versions")
    assert.equal(1, r.code)
    assert.matches("^luamig: .*" .. (dir:gsub("%p", "%%%0")) .. "/versions/bbbb00000002_two%.lua:9:", r.errline)
  end)

  it("are skipped where the versions directory cannot be written", function()
    -- root writes through permissions: a directory that is a read-only bind is out of reach here, so the write
    -- fails by another route: .luamig-code is a directory
    assert(os.execute("mkdir " .. S.q(dir .. "/versions/.luamig-code") .. " " .. S.q(dir .. "/versions/.luamig-cache")))
    local r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb00000002", S.versions(db))
    assert.equal(0, run("downgrade base").code)
    assert.equal(0, run("upgrade head").code)
    assert.same({ "a", "b", "luamig_history", "luamig_version" }, S.tables(db))
  end)
end)
