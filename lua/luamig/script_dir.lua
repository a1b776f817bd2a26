-- The script directory: finds migration files, loads each in a fresh environment under pcall, validates the table it
-- returns and turns it into a revision record for the revision graph. Messages name the file (and line).
local core = require("luamig.core")
local path = require("luamig.path")

local type, ipairs, pairs, format, setmetatable, getmetatable, pcall, load = type, ipairs, pairs, string.format,
  setmetatable, getmetatable, pcall, load
local collectgarbage, rawget, rawset = collectgarbage, rawget, rawset
local sort, gsub, find, tostring, byte, sub = table.sort, string.gsub, string.find, tostring, string.byte, string.sub

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
    return nil, format("error while running %s: %s", shown, type(res) == "string" and res or tostring(res))
  end
  return res
end

-- load_file(abs) -> revision record, or nil, message
-- record: { revision, down_revisions, branch_labels, depends_on, transactional, message, path, shown, checksum, module }
local function load_file(abs)
  local shown = path.display(abs)
  local chunkname = "@" .. shown
  local fn, sum, first_line = core.load_migration(abs, chunkname, sandbox())
  if not fn then
    if sum and sum:find("^" .. abs:gsub("%p", "%%%0")) then
      return nil, format("cannot read migration file %s: %s", shown, sum:sub(#abs + 3))
    end
    return nil, format("cannot load %s", tostring(sum))
  end
  local ok, m = pcall(fn)
  if not ok then
    return nil, format("error while running %s: %s", shown, type(m) == "string" and m or tostring(m))
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

-- list_files(dirs) -> sorted absolute paths of *.lua migration files, or nil, message
local function list_files(dirs)
  local files = {}
  for _, dir in ipairs(dirs) do
    local names, err = core.listdir(dir)
    if not names then
      return nil, format("cannot read versions directory %s: %s", path.display(dir), (err or ""):match(": (.*)$") or err)
    end
    sort(names)
    for _, n in ipairs(names) do
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

-- materialize(r) -> true, or nil, message: compiles and runs a scanned revision's file, checks that it declares
-- what the scan read, and fills in its module and checksum
local function materialize(r)
  if rawget(r, "module") then return true end
  local full, err = load_file(r.path)
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
local LazyMT = {
  __index = function(r, k)
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
  }, LazyMT)
end

-- The revision cache -----------------------------------------------------------------------------------------
--
-- Reading 500 small files costs more than everything else `luamig current` does. Each versions directory keeps
-- what the scan found in `.luamig-cache` (a Lua table, run in an empty environment), keyed by each file's
-- size, inode, mtime and ctime: an edit or a copy changes the ctime, so a stale entry is never used. The cache is
-- rewritten when an entry changed; where the directory is read-only, luamig goes on without it.

local CACHE, CACHE_HEAD = ".luamig-cache", "luamig revision cache 2, luamig " .. core.version .. ", " .. _VERSION .. "\n"

-- The cache is stored compiled (Lua bytecode: loading it costs a copy, not a parse) after a header naming the luamig
-- and Lua versions that wrote it; any other header, or a chunk that does not load, is ignored.
local function read_cache(dir)
  local src = core.read_source(path.join(dir, CACHE))
  if not src or sub(src, 1, #CACHE_HEAD) ~= CACHE_HEAD then return {} end
  local fn = load(sub(src, #CACHE_HEAD + 1), "=" .. CACHE, "b", {})
  if not fn then return {} end
  local ok, t = pcall(fn)
  if not ok or type(t) ~= "table" then return {} end
  return t
end

-- a list as the cache keeps it: false when empty, the string itself when it has one
local function pack_list(list)
  -- (an entry read back from the cache is packed already)
  if not list then return "false" end
  if type(list) == "string" then return format("%q", list) end
  if #list == 0 then return "false" end
  if #list == 1 then return format("%q", list[1]) end
  local parts = {}
  for i, v in ipairs(list) do parts[i] = format("%q", v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function unpack_list(v)
  if not v then return EMPTY end
  if type(v) == "string" then return { v } end
  return v
end

local function write_cache(dir, entries, names)
  local out = { "return {\n" }
  for _, n in ipairs(names) do
    local e = entries[n]
    if e then
      out[#out + 1] = format("[%q]={%q,%q,%s,%s,%s,%s,%q},\n", n, e[1], e[2], pack_list(e[3]), pack_list(e[4]),
        pack_list(e[5]), tostring(e[6]), e[7])
    end
  end
  out[#out + 1] = "}\n"
  local fn = load(table.concat(out), "=" .. CACHE, "t", {})
  if not fn then return end
  local target = path.join(dir, CACHE)
  local tmp = format("%s.%d", target, core.getpid())
  local f = io.open(tmp, "wb")
  if not f then return end
  local ok = f:write(CACHE_HEAD, string.dump(fn, true))
  f:close()
  if not ok or not os.rename(tmp, target) then os.remove(tmp) end
end

local function record_of(abs, shown, rev, downs, labels, deps, transactional, message)
  return setmetatable({
    revision = rev, down_revisions = downs, branch_labels = labels, depends_on = deps,
    transactional = transactional, message = message, path = abs, shown = shown,
    index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
  }, LazyMT)
end

-- lazy_dir(dir, revs) -> true, or nil, message: the revisions of one directory, from the cache where it is current
local function lazy_dir(dir, revs)
  local names, sigs = core.listdir(dir, true)
  if not names then
    return nil, format("cannot read versions directory %s: %s", path.display(dir), (sigs or ""):match(": (.*)$") or sigs)
  end
  local sig_of = {}
  for i, n in ipairs(names) do sig_of[n] = sigs[i] end
  local files = {}
  for _, n in ipairs(names) do
    local c = byte(n)
    if c ~= 46 and c ~= 95 and sub(n, -4) == ".lua" then files[#files + 1] = n end
  end
  sort(files)
  local cache = read_cache(dir)
  local fresh, dirty = {}, false
  for _, n in ipairs(files) do
    local abs = path.join(dir, n)
    local sig, e = sig_of[n], cache[n]
    local r
    if e and sig ~= "" and e[1] == sig then
      r = record_of(abs, path.display(abs), e[2], unpack_list(e[3]), unpack_list(e[4]), unpack_list(e[5]), e[6], e[7])
      fresh[n] = e
    else
      local err
      r, err = scan_file(abs)
      if not r then return nil, err end
      dirty = true
      if getmetatable(r) == LazyMT and sig ~= "" then
        fresh[n] = { sig, r.revision, r.down_revisions, r.branch_labels, r.depends_on, r.transactional, r.message }
      end
    end
    revs[#revs + 1] = r
  end
  for n in pairs(cache) do if not fresh[n] then dirty = true end end
  if dirty then write_cache(dir, fresh, files) end
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

return { load_file = load_file, load_all = load_all, materialize = materialize, scan = scan, list_files = list_files, load_env = load_env, checksum = checksum,
  sandbox = sandbox }
