-- luamig.script_cache: the revision cache and the code cache of a versions directory, written atomically and used
-- only when their bytes verify. On real files in a temp dir.
local cache = require("luamig.script_cache")
local core = require("luamig.core")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

local function listing(dir)
  local out = {}
  for _, n in ipairs(assert(core.listdir(dir))) do out[#out + 1] = n end
  table.sort(out)
  return out
end

local RECS = {
  { revision = "a1", down_revisions = {}, branch_labels = { "main" }, depends_on = {}, transactional = true, message = "one" },
  { revision = "b2", down_revisions = { "a1" }, branch_labels = {}, depends_on = {}, transactional = false, message = "two" },
}

describe("#unit script_cache", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("writes the revision cache atomically and reads back every column", function()
    cache.write_revisions(dir, { "a1.lua", "b2.lua" }, { "sig1", "sig2" }, RECS, function() return true end)
    -- the temp file was renamed over the cache: nothing else is left in the directory
    assert.same({ ".luamig-cache" }, listing(dir))
    local t = cache.read_revisions(dir)
    assert.same({ "a1.lua", "b2.lua" }, t.names)
    assert.same({ "sig1", "sig2" }, t.sigs)
    assert.same({ "a1", "b2" }, t.revs)
    assert.same({ false, { "a1" } }, t.downs)
    assert.same({ { "main" }, false }, t.labels)
    assert.same({ true, false }, t.tx)
    assert.same({ "one", "two" }, t.msgs)
  end)

  it("keeps no fields of a record it may not cache", function()
    cache.write_revisions(dir, { "a1.lua", "b2.lua" }, { "sig1", "sig2" }, RECS, function(r) return r.revision == "a1" end)
    local t = cache.read_revisions(dir)
    assert.same({ "a1", false }, t.revs)
    assert.same({ "sig1", false }, t.sigs)
  end)

  it("ignores a revision cache whose bytes are not what was written", function()
    cache.write_revisions(dir, { "a1.lua" }, { "sig1" }, { RECS[1] }, function() return true end)
    local p = dir .. "/.luamig-cache"
    local good = read(p)
    for _, at in ipairs({ #good - 1, #good - 20, math.floor(#good / 2), 60 }) do
      local b = good:byte(at) ~ 0x21
      write(p, good:sub(1, at - 1) .. string.char(b) .. good:sub(at + 1))
      assert.same({}, cache.read_revisions(dir), "byte " .. at)
    end
    write(p, good:sub(1, #good - 10))
    assert.same({}, cache.read_revisions(dir), "truncated")
    write(p, "luamig revision cache 1, from another version\n")
    assert.same({}, cache.read_revisions(dir), "another header")
    os.remove(p)
    assert.same({}, cache.read_revisions(dir), "no file")
  end)

  it("serves a compiled chunk while its entry is current, and never one whose bytes do not verify", function()
    local fn = assert(load("return 42", "@versions/a1.lua"))
    cache.listed(dir, { "a1.lua" }, { "sig1" })
    cache.put_code(dir, "a1.lua", "sig1", "sum1", "one", "@versions/a1.lua", fn)
    cache.save_code()
    local got, sum, first = cache.cached_code(dir, "a1.lua", "sig1", "@versions/a1.lua", {})
    assert.equal(42, got())
    assert.equal("sum1", sum)
    assert.equal("one", first)
    -- another signature or chunk name: not current
    assert.is_nil(cache.cached_code(dir, "a1.lua", "sig2", "@versions/a1.lua", {}))
    assert.is_nil(cache.cached_code(dir, "a1.lua", "sig1", "@elsewhere/a1.lua", {}))
    cache.save_code()
    -- damage the chunk's bytes (the last of the file are the digest's; before them the bytecode)
    local p = dir .. "/.luamig-code"
    local good = read(p)
    local at = #good - 30
    write(p, good:sub(1, at - 1) .. string.char(good:byte(at) ~ 0x5a) .. good:sub(at + 1))
    assert.is_nil(cache.cached_code(dir, "a1.lua", "sig1", "@versions/a1.lua", {}))
    cache.save_code()
  end)

  it("keeps in the code cache only the files the last listing saw unchanged", function()
    local fn = assert(load("return 1", "@v/x.lua"))
    cache.listed(dir, { "a1.lua" }, { "sig1" })
    cache.put_code(dir, "a1.lua", "sig1", "s", "m", "@v/a1.lua", fn)
    cache.put_code(dir, "gone.lua", "sig9", "s", "m", "@v/gone.lua", fn)
    cache.save_code()
    assert.is_function(cache.cached_code(dir, "a1.lua", "sig1", "@v/a1.lua", {}))
    assert.is_nil(cache.cached_code(dir, "gone.lua", "sig9", "@v/gone.lua", {}))
    cache.save_code()
  end)
end)
