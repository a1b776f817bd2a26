-- The script directory: finds migration files, loads each in a fresh environment under pcall, validates the table it
-- returns and turns it into a revision record for the revision graph. Messages name the file (and line).
local core = require("luamig.core")
local path = require("luamig.path")

local type, ipairs, pairs, format, setmetatable, getmetatable, pcall, load = type, ipairs, pairs, string.format,
  setmetatable, getmetatable, pcall, load
local collectgarbage, rawget, rawset = collectgarbage, rawget, rawset
local sort, gsub, find, tostring, byte, sub = table.sort, string.gsub, string.find, tostring, string.byte, string.sub
local pack, unpack, dump = string.pack, string.unpack, string.dump

-- A file's environment reads the standard globals but writes into its own table, so nothing leaks between files.
local SANDBOX_MT = { __index = _G }

local function sandbox()
  return setmetatable({}, SANDBOX_MT)
end

-- checksum(src) -> SHA-256 hex of the text with CRLF line endings normalised to LF.
local function checksum(src)
  if find(src, "\r", 1, true) then src = gsub(src, "\r\n", "\n") end
  return core.sha256(src)
end

local ILLEGAL = "[@%-%+:%s]"

-- error_text(e) -> an error value as text: a string as it is, a value with __tostring through it (when that
-- works), anything else by its type
local function error_text(e)
  if type(e) == "string" then return e end
  local mt = getmetatable(e)
  if type(mt) == "table" and mt.__tostring then
    local ok, text = pcall(tostring, e)
    if ok and type(text) == "string" then return text end
  end
  return format("an error value of type %s, with no message", type(e))
end

local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })

local function string_list(v, what, shown)
  if v == nil then return EMPTY end
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then return nil, format("%s: %s must be nil, a string or a list of strings", shown, what) end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return nil, format("%s: %s[%d] is not a string", shown, what, i) end
    out[i] = s
  end
  return out
end

-- run_chunk(src, shown, env) -> the chunk's first result, or nil, message naming file and line.
local function run_chunk(src, shown, env)
  local fn, err = load(src, "@" .. shown, "t", env or sandbox())
  if not fn then return nil, format("cannot load %s", err) end
  local ok, res = pcall(fn)
  if not ok then
    return nil, format("error while running %s: %s", shown, error_text(res))
  end
  return res
end

-- record_from(abs, shown, chunkname, fn, sum, first_line) -> revision record, or nil, message: runs a compiled file
-- and checks the table it returns
local function record_from(abs, shown, chunkname, fn, sum, first_line)
  local ok, m = pcall(fn)
  if not ok then
    return nil, format("error while running %s: %s", shown, error_text(m))
  end
  if type(m) ~= "table" then
    return nil, format("%s: a migration file must return a table (got %s)", shown, type(m))
  end
  local rev = m.revision
  if type(rev) ~= "string" or rev == "" then
    return nil, format("%s: 'revision' must be a non-empty string", shown)
  end
  if find(rev, ILLEGAL) then
    return nil, format("%s: revision id '%s' contains one of the illegal characters @ - + : or white space", shown, rev)
  end
  if #rev > 32 then return nil, format("%s: revision id '%s' is longer than 32 characters", shown, rev) end
  local downs, e1 = string_list(m.down_revision, "down_revision", shown)
  if not downs then return nil, e1 end
  local labels, e2 = string_list(m.branch_labels, "branch_labels", shown)
  if not labels then return nil, e2 end
  local deps, e3 = string_list(m.depends_on, "depends_on", shown)
  if not deps then return nil, e3 end
  if m.transactional ~= nil and type(m.transactional) ~= "boolean" then
    return nil, format("%s: 'transactional' must be true or false", shown)
  end
  if type(m.upgrade) ~= "function" then return nil, format("%s: 'upgrade' must be a function", shown) end
  if type(m.downgrade) ~= "function" then return nil, format("%s: 'downgrade' must be a function", shown) end
  local message = first_line
  if message == "" and type(m.message) == "string" then message = m.message end
  return {
    revision = rev, down_revisions = downs, branch_labels = labels, depends_on = deps,
    transactional = m.transactional ~= false, message = message, path = abs, shown = shown, chunkname = chunkname,
    checksum = sum, module = m,
    -- filled in by the revision graph; declared here so the record is allocated at its full size once
    index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
  }
end

-- compile(abs) -> fn, checksum, first-line message, shown, chunkname; or nil, message
local function compile(abs)
  local shown = path.display(abs)
  local chunkname = "@" .. shown
  local fn, sum, first_line = core.load_migration(abs, chunkname, sandbox())
  if not fn then
    if sum and sum:find("^" .. abs:gsub("%p", "%%%0")) then
      return nil, format("cannot read migration file %s: %s", shown, sum:sub(#abs + 3))
    end
    return nil, format("cannot load %s", tostring(sum))
  end
  return fn, sum, first_line, shown, chunkname
end

-- load_file(abs) -> revision record, or nil, message
-- record: { revision, down_revisions, branch_labels, depends_on, transactional, message, path, shown, checksum, module }
local function load_file(abs)
  local fn, sum, first_line, shown, chunkname = compile(abs)
  if not fn then return nil, sum end
  return record_from(abs, shown, chunkname, fn, sum, first_line)
end

-- list_files(dirs) -> sorted absolute paths of *.lua migration files, or nil, message
local function list_files(dirs)
  local files = {}
  for _, dir in ipairs(dirs) do
    local names, err = core.listdir(dir)
    if not names then
      return nil, format("cannot read versions directory %s: %s", path.display(dir), (err or ""):match(": (.*)$") or err)
    end
    for _, n in ipairs(names) do -- (in byte order)
      local c = byte(n)
      if c ~= 46 and c ~= 95 and sub(n, -4) == ".lua" then -- not "." nor "_" first
        files[#files + 1] = path.join(dir, n)
      end
    end
  end
  return files
end

-- Reading the graph without running the files ---------------------------------------------------------------
--
-- Commands that only read the graph (current, heads, history, show, check) need each file's revision fields, not its
-- code. When a file declares them as literals (revision = "a1b2", down_revision = nil | "x" | { "x", "y" },
-- branch_labels, depends_on, transactional = true | false), a scan of its text reads them without compiling it;
-- anything else is loaded in full as before. A scanned revision is compiled and run when something needs its
-- code or checksum (materialize), and its fields are checked then against what the scan read.

-- scan(src) -> the revision fields as the file would return them, or nil when the text does not declare them as
-- plain literals (core.scan_revision reads them in one pass that skips comments and strings)
local function scan(src)
  local f = core.scan_revision(src)
  if not f then return nil end
  -- a message that is not the first-line docstring comes from running the file
  if f.message == "" and find(src, "message", 1, true) then return nil end
  return f
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- The code cache ---------------------------------------------------------------------------------------------
--
-- Compiling and hashing 500 files costs a run more than its own SQL does. Each versions directory keeps what that
-- work produced in `.luamig-code`: per file, the signature the revision cache keys on, the checksum, the first-line
-- message, the chunk name, the compiled chunk (with its debug information, so errors still name file and line) and
-- the SHA-256 of that chunk: Lua does not verify bytecode, so a chunk whose bytes are not what was written (a
-- truncated or damaged file) is never loaded; the source is compiled instead.
-- An entry is used only while the file's signature and chunk name are what they were; Runner:prepare writes the
-- file again (save_code) when it compiled something, keeping only the entries of files still there unchanged.

local CODE, CODE_HEAD = ".luamig-code", "luamig code cache 3, luamig " .. core.version .. ", " .. _VERSION .. "\n"
local CODE_ENTRY = "<s4s4s4s4s4s4s4"
local code_dirs = {} -- dir -> { entries = { [name] = { sig, checksum, message, chunkname, bytecode } }, dirty }
local live_files = {} -- dir -> { names, signatures } of its migration files as the last scan found them

-- write_atomic(target, data) -> true, or nil: writes beside target and renames, so a reader sees the old file or
-- the new one; where the directory is read-only, luamig goes on without it
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

-- compiled(r) -> fn, checksum, first-line message, shown, chunkname; or nil, message: a scanned revision's chunk,
-- from the code cache when its entry is current
local function compiled(r)
  local at, name, sig = rawget(r, "cache_dir"), rawget(r, "cache_name"), rawget(r, "sig")
  if not at or not sig or sig == "" then return compile(r.path) end
  local dir = at.dir
  local c = code_of(dir)
  local e, chunkname = c.entries[name], "@" .. r.shown
  if e and e[1] == sig and e[4] == chunkname and core.sha256(e[5]) == e[6] then
    local fn = load(e[5], chunkname, "b", sandbox())
    if fn then return fn, e[2], e[3], r.shown, chunkname end
  end
  local fn, sum, first, shown, cn = compile(r.path)
  if fn then
    local code = dump(fn)
    c.entries[name] = { sig, sum, first, cn, code, core.sha256(code) }
    c.dirty = true
  end
  return fn, sum, first, shown, cn
end

-- save_code(): writes the code cache of each directory where something was compiled, and forgets what was read
local function save_code()
  for dir, c in pairs(code_dirs) do
    local listed = live_files[dir]
    if c.dirty and listed then
      local live = {}
      for i, name in ipairs(listed[1]) do live[name] = listed[2][i] end
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
      write_atomic(path.join(dir, CODE), table.concat(out))
    end
  end
  code_dirs = {}
end

-- materialize(r) -> true, or nil, message: compiles and runs a scanned revision's file, checks that it declares
-- what the scan read, and fills in its module and checksum
local function materialize(r)
  if rawget(r, "module") then return true end
  local fn, sum, first_line, shown, chunkname = compiled(r)
  if not fn then return nil, sum end
  local full, err = record_from(r.path, shown, chunkname, fn, sum, first_line)
  if not full then return nil, err end
  if full.revision ~= r.revision or not same_list(full.down_revisions, r.down_revisions)
    or not same_list(full.branch_labels, r.branch_labels) or not same_list(full.depends_on, r.depends_on)
    or full.transactional ~= r.transactional then
    return nil, format("%s changed while luamig was running (its revision fields are not what they were)", r.shown)
  end
  rawset(r, "module", full.module)
  rawset(r, "checksum", full.checksum)
  return true
end

-- A scanned record computes module and checksum the first time they are read.
-- (A record read from the cache also works out its path and shown path when first asked: at 100,000 revisions,
-- making 200,000 strings nobody reads costs a tenth of `luamig heads`.)
local LazyMT = {
  __index = function(r, k)
    if k == "path" or k == "shown" then
      local at = rawget(r, "cache_dir")
      if not at then return nil end
      local v = (k == "path" and at.abs or at.shown) .. r.cache_name
      rawset(r, k, v)
      return v
    end
    if k == "chunkname" then return "@" .. r.shown end
    if k == "module" or k == "checksum" then
      local ok, err = materialize(r)
      if not ok then error(err, 0) end
      return rawget(r, k)
    end
    return nil
  end,
}

-- scan_file(abs) -> revision record (lazy when the scan could read it), or nil, message
local function scan_file(abs)
  local src, rerr = core.read_source(abs)
  if not src then
    return nil, format("cannot read migration file %s: %s", path.display(abs), (rerr or ""):match(": (.*)$") or rerr)
  end
  local f = scan(src)
  if not f then return load_file(abs) end
  local shown = path.display(abs)
  local rev = f.revision
  if type(rev) ~= "string" or rev == "" or find(rev, ILLEGAL) or #rev > 32 then return load_file(abs) end
  local downs = string_list(f.down_revision, "down_revision", shown)
  local labels = string_list(f.branch_labels, "branch_labels", shown)
  local deps = string_list(f.depends_on, "depends_on", shown)
  if not (downs and labels and deps) or (f.transactional ~= nil and type(f.transactional) ~= "boolean") then
    return load_file(abs)
  end
  return setmetatable({
    revision = rev, down_revisions = downs, branch_labels = labels, depends_on = deps,
    transactional = f.transactional ~= false, message = f.message, path = abs, shown = shown,
    index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
    cache_dir = false, cache_name = false, sig = false,
  }, LazyMT)
end

-- The revision cache -----------------------------------------------------------------------------------------
--
-- Reading 500 small files costs more than everything else `luamig current` does. Each versions directory keeps
-- what the scan found in `.luamig-cache` (a Lua chunk returning one column per field, one entry per file, run in an
-- empty environment), keyed by each file's signature from core.listdir (size, inode, mtime, ctime, device, mode):
-- an edit or a copy changes the ctime, so a stale entry is never used. The cache is rewritten when an entry
-- changed; where the directory is read-only, luamig goes on without it.

local CACHE, CACHE_HEAD = ".luamig-cache", "luamig revision cache 6, luamig " .. core.version .. ", " .. _VERSION .. "\n"

-- The cache is stored compiled (Lua bytecode: loading it costs a copy, not a parse) after a header naming the luamig
-- and Lua versions that wrote it and the chunk's SHA-256; any other header, a chunk that does not match its digest
-- or does not load, is ignored.
local COLUMNS = { "names", "sigs", "revs", "downs", "labels", "deps", "tx", "msgs" }

-- read_cache(dir) -> the cache's columns (each a list, one entry per file, in the order of the file names), or {}
local function read_cache(dir)
  local src = core.read_source(path.join(dir, CACHE))
  if not src or sub(src, 1, #CACHE_HEAD) ~= CACHE_HEAD then return {} end
  -- the header is followed by the SHA-256 of the chunk (64 characters): damaged bytecode is never loaded
  local digest, chunk = sub(src, #CACHE_HEAD + 1, #CACHE_HEAD + 64), sub(src, #CACHE_HEAD + 65)
  if core.sha256(chunk) ~= digest then return {} end
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

-- a list as the cache keeps it: false when empty (read back as the shared EMPTY), else the list itself
local function pack_list(list)
  if not list or #list == 0 then return "false" end
  local parts = {}
  for i, v in ipairs(list) do parts[i] = format("%q", v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- write_cache(dir, files, sigs, recs): one column per field, one entry per file (false where a file's fields
-- cannot be cached: it is loaded in full each time)
local function write_cache(dir, files, sigs, recs)
  local cols = {}
  for k, col in ipairs(COLUMNS) do cols[k] = { col, "={" } end
  local function add(k, text)
    local c = cols[k]
    c[#c + 1] = text
    c[#c + 1] = ","
  end
  for i, n in ipairs(files) do
    local r, sig = recs[i], sigs[i]
    local ok = getmetatable(r) == LazyMT and sig ~= ""
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
    out[k + 1] = table.concat(c)
  end
  out[#out + 1] = "}\n"
  local fn = load(table.concat(out), "=" .. CACHE, "t", {})
  if not fn then return end
  local chunk = dump(fn, true)
  write_atomic(path.join(dir, CACHE), CACHE_HEAD .. core.sha256(chunk) .. chunk)
end

-- lazy_dir(dir, revs) -> true, or nil, message: the revisions of one directory, from the cache where it is current.
-- The cache lists the files in the order listdir gives them, so an unchanged directory is matched entry by entry,
-- without a lookup by name.
local function lazy_dir(dir, revs)
  local names, sigs = core.listdir(dir, true)
  if not names then
    return nil, format("cannot read versions directory %s: %s", path.display(dir), (sigs or ""):match(": (.*)$") or sigs)
  end
  local files, fsigs, k = {}, {}, 0 -- (in byte order, as listdir gives them)
  for i, n in ipairs(names) do
    local c = byte(n)
    if c ~= 46 and c ~= 95 and sub(n, -4) == ".lua" then
      k = k + 1
      files[k], fsigs[k] = n, sigs[i]
    end
  end
  live_files[dir] = { files, fsigs }
  local cache = read_cache(dir)
  local cn, cs = cache.names or EMPTY, cache.sigs
  local dirty = #cn ~= k
  -- every file of the directory has the same path and shown prefix: work them out from the first
  local place = { dir = dir }
  if k > 0 then
    local n = files[1]
    local abs = path.join(dir, n)
    place.abs = sub(abs, 1, #abs - #n)
    local shown = path.display(abs)
    place.shown = sub(shown, 1, #shown - #n)
  end
  local recs, index = {}, nil
  local first = #revs
  for i = 1, k do
    local n, sig = files[i], fsigs[i]
    local at = i
    if cn[i] ~= n then
      dirty = true
      if not index then
        index = {}
        for j, m in ipairs(cn) do index[m] = j end
      end
      at = index[n]
    end
    local r
    if at and sig ~= "" and cs[at] == sig then
      r = setmetatable({
        revision = cache.revs[at], down_revisions = cache.downs[at] or EMPTY, branch_labels = cache.labels[at] or EMPTY,
        depends_on = cache.deps[at] or EMPTY, transactional = cache.tx[at], message = cache.msgs[at],
        index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
        cache_dir = place, cache_name = n, sig = sig,
      }, LazyMT)
    else
      local err
      r, err = scan_file(place.abs .. n)
      if not r then return nil, err end
      dirty = true
      if getmetatable(r) == LazyMT then r.cache_dir, r.cache_name, r.sig = place, n, sig end
    end
    recs[i] = r
    revs[first + i] = r
  end
  if dirty then write_cache(dir, files, fsigs, recs) end
  return true
end

-- load_all(dirs, lazy) -> list of revision records, or nil, message. lazy: read the revision fields from the cache
-- or by scanning where the files allow it (materialize the ones whose code is needed).
local function load_all(dirs, lazy)
  local revs = {}
  -- Loading keeps almost everything it allocates (the garbage is about the size of the files read), while each GC
  -- cycle would mark the whole growing set of loaded migrations again: collect once afterwards instead.
  local was_running = collectgarbage("isrunning")
  collectgarbage("stop")
  local ok, err = true, nil
  if lazy then
    for _, dir in ipairs(dirs) do
      ok, err = lazy_dir(dir, revs)
      if not ok then break end
    end
  else
    local files
    files, err = list_files(dirs)
    ok = files ~= nil
    for _, f in ipairs(files or {}) do
      local r, lerr = load_file(f)
      if not r then
        ok, err = false, lerr
        break
      end
      revs[#revs + 1] = r
    end
  end
  if was_running then collectgarbage("restart") end
  if not ok then return nil, err end
  return revs
end

-- load_env(script_location, context) -> the table env.lua returns ({} when there is none), or nil, message
local function load_env(script_location, context)
  local abs = path.join(script_location, "env.lua")
  if not path.exists(abs) then return {} end
  local src, err = path.read_file(abs)
  if not src then return nil, format("cannot read %s: %s", path.display(abs), err) end
  local env = sandbox()
  env.context = context
  local res, rerr = run_chunk(src, path.display(abs), env)
  if rerr then return nil, rerr end
  if res == nil then return {} end
  if type(res) ~= "table" then
    return nil, format("%s: env.lua must return a table or nothing (got %s)", path.display(abs), type(res))
  end
  return res
end

return { load_file = load_file, load_all = load_all, materialize = materialize, save_code = save_code, record_from = record_from, error_text = error_text, scan = scan, list_files = list_files, load_env = load_env, checksum = checksum,
  sandbox = sandbox }
