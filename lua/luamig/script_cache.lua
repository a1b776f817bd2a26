-- The two caches of a versions directory, each written atomically (a temp file beside it, then a rename: a reader
-- sees the old file or the new one) and verified before use (a header naming the luamig and Lua versions that
-- wrote it, and digests of the bytecode (core.digest): Lua does not verify bytecode, so bytes that are not what was
-- written are never loaded). Where the directory is read-only, luamig goes on without them.
--
-- `.luamig-cache`, the revision cache: reading 500 small files costs more than everything else `luamig current`
-- does. It keeps what the scan found (one column per field, one entry per file), keyed by each file's signature
-- from core.listdir (size, inode, mtime, ctime, device, mode): an edit or a copy changes the ctime, so a stale
-- entry is never used. It is stored compiled (loading it costs a copy, not a parse) and rewritten when an entry
-- changed.
--
-- `.luamig-code`, the code cache: compiling and hashing 500 files costs a run more than its own SQL does. Per file
-- it keeps the signature, the checksum, the first-line message, the chunk name, the compiled chunk (with its debug
-- information, so errors still name file and line) and the digest of that chunk. An entry is used only while the
-- file's signature and chunk name are what they were; save_code writes the file again when something was compiled,
-- keeping only the entries of files still there unchanged.
local core = require("luamig.core")
local path = require("luamig.path")

local type, ipairs, pairs, format, pcall, load, tostring = type, ipairs, pairs, string.format, pcall, load, tostring
local sort, sub, concat = table.sort, string.sub, table.concat
local pack, unpack, dump = string.pack, string.unpack, string.dump

-- write_atomic(target, data) -> true, or nil
local function write_atomic(target, data)
  local tmp = format("%s.%d", target, core.getpid())
  local f = io.open(tmp, "wb")
  if not f then return nil end
  local ok = f:write(data)
  ok = f:close() and ok
  if ok and os.rename(tmp, target) then return true end
  os.remove(tmp)
  return nil
end

-- The revision cache --------------------------------------------------------------------------------------------

local CACHE, CACHE_HEAD = ".luamig-cache", "luamig revision cache 7, luamig " .. core.version .. ", " .. _VERSION .. "\n"
local COLUMNS = { "names", "sigs", "revs", "downs", "labels", "deps", "tx", "msgs" }

-- read_revisions(dir) -> the cache's columns (each a list, one entry per file, in the order of the file names), or
-- {} when there is no cache that matches its header and digest and has every column at the same length
local function read_revisions(dir)
  local src = core.read_source(path.join(dir, CACHE))
  if not src or sub(src, 1, #CACHE_HEAD) ~= CACHE_HEAD then return {} end
  -- the header is followed by the digest of the chunk (16 characters)
  local digest, chunk = sub(src, #CACHE_HEAD + 1, #CACHE_HEAD + 16), sub(src, #CACHE_HEAD + 17)
  if core.digest(chunk) ~= digest then return {} end
  local fn = load(chunk, "=" .. CACHE, "b", {})
  if not fn then return {} end
  local ok, t = pcall(fn)
  if not ok or type(t) ~= "table" then return {} end
  local n = type(t.names) == "table" and #t.names or -1
  for _, col in ipairs(COLUMNS) do
    if type(t[col]) ~= "table" or #t[col] ~= n then
      return {}
    end
  end
  return t
end

-- a list as the cache keeps it: false when empty (read back as the shared empty list), else the list itself
local function pack_list(list)
  if not list or #list == 0 then return "false" end
  local parts = {}
  for i, v in ipairs(list) do parts[i] = format("%q", v) end
  return "{" .. concat(parts, ",") .. "}"
end

-- write_revisions(dir, files, sigs, recs, cacheable): one column per field, one entry per file; false where a
-- file's fields cannot be cached (cacheable(r) says no: it is loaded in full each time)
local function write_revisions(dir, files, sigs, recs, cacheable)
  local cols = {}
  for k, col in ipairs(COLUMNS) do cols[k] = { col, "={" } end
  local function add(k, text)
    local c = cols[k]
    c[#c + 1] = text
    c[#c + 1] = ","
  end
  for i, n in ipairs(files) do
    local r, sig = recs[i], sigs[i]
    local ok = cacheable(r) and sig ~= ""
    add(1, format("%q", n))
    add(2, ok and format("%q", sig) or "false")
    add(3, ok and format("%q", r.revision) or "false")
    add(4, ok and pack_list(r.down_revisions) or "false")
    add(5, ok and pack_list(r.branch_labels) or "false")
    add(6, ok and pack_list(r.depends_on) or "false")
    add(7, ok and tostring(r.transactional) or "false")
    add(8, ok and format("%q", r.message) or "false")
  end
  local out = { "return {\n" }
  for k, c in ipairs(cols) do
    c[#c + 1] = "},\n"
    out[k + 1] = concat(c)
  end
  out[#out + 1] = "}\n"
  local fn = load(concat(out), "=" .. CACHE, "t", {})
  if not fn then return end
  local chunk = dump(fn, true)
  write_atomic(path.join(dir, CACHE), CACHE_HEAD .. core.digest(chunk) .. chunk)
end

-- The code cache ------------------------------------------------------------------------------------------------

local CODE, CODE_HEAD = ".luamig-code", "luamig code cache 4, luamig " .. core.version .. ", " .. _VERSION .. "\n"
local CODE_ENTRY = "<s4s4s4s4s4s4s4"
local code_dirs = {} -- dir -> { entries = { [name] = { sig, checksum, message, chunkname, bytecode, digest } }, dirty }
local live_files = {} -- dir -> { names, signatures } of its migration files as the last listing found them

-- listed(dir, names, sigs): the migration files of dir as a listing found them (save_code keeps only their entries)
local function listed(dir, names, sigs) live_files[dir] = { names, sigs } end

local function code_of(dir)
  local c = code_dirs[dir]
  if c then return c end
  c = { entries = {}, dirty = false }
  code_dirs[dir] = c
  local data = core.read_source(path.join(dir, CODE))
  if data and sub(data, 1, #CODE_HEAD) == CODE_HEAD then
    local entries, pos, n = c.entries, #CODE_HEAD + 1, #data
    local ok = pcall(function()
      while pos <= n do
        local name, sig, sum, first, chunkname, code, digest
        name, sig, sum, first, chunkname, code, digest, pos = unpack(CODE_ENTRY, data, pos)
        entries[name] = { sig, sum, first, chunkname, code, digest }
      end
    end)
    if not ok then c.entries = {} end
  end
  return c
end

-- cached_code(dir, name, sig, chunkname, env) -> fn, checksum, first-line message; or nil when the entry of file
-- name is not current or does not verify
local function cached_code(dir, name, sig, chunkname, env)
  local e = code_of(dir).entries[name]
  if e and e[1] == sig and e[4] == chunkname and core.digest(e[5]) == e[6] then
    local fn = load(e[5], chunkname, "b", env)
    if fn then return fn, e[2], e[3] end
  end
  return nil
end

-- put_code(dir, name, sig, checksum, first, chunkname, fn): the compiled chunk of a file, for save_code
local function put_code(dir, name, sig, sum, first, chunkname, fn)
  local c = code_of(dir)
  local code = dump(fn)
  c.entries[name] = { sig, sum, first, chunkname, code, core.digest(code) }
  c.dirty = true
end

-- save_code(): writes the code cache of each directory where something was compiled, and forgets what was read
local function save_code()
  for dir, c in pairs(code_dirs) do
    local files = live_files[dir]
    if c.dirty and files then
      local live = {}
      for i, name in ipairs(files[1]) do live[name] = files[2][i] end
      local names = {}
      for name, e in pairs(c.entries) do
        if live[name] == e[1] then names[#names + 1] = name end
      end
      sort(names)
      local out = { CODE_HEAD }
      for i, name in ipairs(names) do
        local e = c.entries[name]
        out[i + 1] = pack(CODE_ENTRY, name, e[1], e[2], e[3], e[4], e[5], e[6])
      end
      write_atomic(path.join(dir, CODE), concat(out))
    end
  end
  code_dirs = {}
end

return { read_revisions = read_revisions, write_revisions = write_revisions, listed = listed,
  cached_code = cached_code, put_code = put_code, save_code = save_code, write_atomic = write_atomic,
  CACHE = CACHE, CODE = CODE }
