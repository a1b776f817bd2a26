-- The script directory: finds migration files, loads each in a fresh environment under pcall, validates the table it
-- returns and turns it into a revision record for the revision graph. Messages name the file (and line).
local core = require("luamig.core")
local path = require("luamig.path")
local cache = require("luamig.script_cache")

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

-- line_in(chunk) -> the current line of the innermost stack level running the chunk (a migration file's
-- chunkname), or nil: where in the file an error happened, or an op was called
local getinfo = debug.getinfo
local function line_in(chunk)
  for level = 2, 200 do
    local info = getinfo(level, "Sl")
    if not info then return nil end
    if info.source == chunk then return info.currentline end
  end
end

local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })

-- string_list(v, what, shown, cached) -> v as a list of strings (a copy), or nil, message. cached: v is a list the
-- revision cache wrote (false for an empty one) from strings this check passed before, used as it is.
local function string_list(v, what, shown, cached)
  if v == nil then return EMPTY end
  if cached then
    if v == false then return EMPTY end
    if type(v) == "table" then return v end
  end
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then return nil, format("%s: %s must be nil, a string or a list of strings", shown, what) end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return nil, format("%s: %s[%d] is not a string", shown, what, i) end
    out[i] = s
  end
  return out
end

-- fields(rev, downs, labels, deps, tx, shown, cached) -> revision, down_revisions, branch_labels, depends_on; or nil,
-- message: the one check of a file's revision fields, whether they come from running it, from a scan of its text or
-- from the revision cache. cached: they come from the cache, which holds only fields this check passed (behind a
-- digest of its bytes): their shape is checked, the characters of the id were checked when the cache was written.
local function fields(rev, downs, labels, deps, tx, shown, cached)
  if type(rev) ~= "string" or rev == "" then
    return nil, format("%s: 'revision' must be a non-empty string", shown)
  end
  if not cached and find(rev, ILLEGAL) then
    return nil, format("%s: revision id '%s' contains one of the illegal characters @ - + : or white space", shown, rev)
  end
  if #rev > 32 then return nil, format("%s: revision id '%s' is longer than 32 characters", shown, rev) end
  local d, e1 = string_list(downs, "down_revision", shown, cached)
  if not d then return nil, e1 end
  local l, e2 = string_list(labels, "branch_labels", shown, cached)
  if not l then return nil, e2 end
  local p, e3 = string_list(deps, "depends_on", shown, cached)
  if not p then return nil, e3 end
  if tx ~= nil and type(tx) ~= "boolean" then return nil, format("%s: 'transactional' must be true or false", shown) end
  return rev, d, l, p
end

-- make_record(...) -> a revision record: the one constructor of the load, scan and cache paths. A loaded record
-- (module given) has everything; one made from a scan or the cache computes module and checksum, and one from the
-- cache (place: its directory's paths) also path and shown, when first read (LazyMT). Every field is named in the
-- table constructor, the graph's too, so that the record is allocated at its full size once; no field is nil there
-- (a nil field still takes a slot).
local function make_record(rev, downs, labels, deps, tx, message, abs, shown, chunkname, sum, module, place, name, sig)
  if module then
    return {
      revision = rev, down_revisions = downs, branch_labels = labels, depends_on = deps, transactional = tx ~= false,
      message = message, path = abs, shown = shown, chunkname = chunkname, checksum = sum, module = module,
      index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
    }
  end
  if place then
    return {
      revision = rev, down_revisions = downs, branch_labels = labels, depends_on = deps, transactional = tx ~= false,
      message = message,
      index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
      cache_dir = place, cache_name = name, sig = sig,
    }
  end
  return {
    revision = rev, down_revisions = downs, branch_labels = labels, depends_on = deps, transactional = tx ~= false,
    message = message, path = abs, shown = shown,
    index = false, load_index = false, dependencies = false, all_labels = false, _walk_parents = false,
    cache_dir = false, cache_name = false, sig = false,
  }
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
  local rev, downs, labels, deps = fields(m.revision, m.down_revision, m.branch_labels, m.depends_on, m.transactional,
    shown)
  if not rev then return nil, downs end
  if type(m.upgrade) ~= "function" then return nil, format("%s: 'upgrade' must be a function", shown) end
  if type(m.downgrade) ~= "function" then return nil, format("%s: 'downgrade' must be a function", shown) end
  local message = first_line
  if message == "" and type(m.message) == "string" then message = m.message end
  return make_record(rev, downs, labels, deps, m.transactional, message, abs, shown, chunkname, sum, m)
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

-- compiled(r) -> fn, checksum, first-line message, shown, chunkname; or nil, message: a scanned revision's chunk,
-- from the code cache when its entry is current
local function compiled(r)
  local at, name, sig = rawget(r, "cache_dir"), rawget(r, "cache_name"), rawget(r, "sig")
  if not at or not sig or sig == "" then return compile(r.path) end
  local chunkname = "@" .. r.shown
  local cfn, csum, cfirst = cache.cached_code(at.dir, name, sig, chunkname, sandbox())
  if cfn then return cfn, csum, cfirst, r.shown, chunkname end
  local fn, sum, first, shown, cn = compile(r.path)
  if fn then cache.put_code(at.dir, name, sig, sum, first, cn, fn) end
  return fn, sum, first, shown, cn
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
  -- fields a scan cannot vouch for: the file is loaded in full, which says what is wrong
  local rev, downs, labels, deps = fields(f.revision, f.down_revision, f.branch_labels, f.depends_on, f.transactional,
    shown)
  if not rev then return load_file(abs) end
  return setmetatable(make_record(rev, downs, labels, deps, f.transactional, f.message, abs, shown), LazyMT)
end

local function is_lazy(r) return getmetatable(r) == LazyMT end

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
  cache.listed(dir, files, fsigs)
  local cached = cache.read_revisions(dir)
  local cn, cs = cached.names or EMPTY, cached.sigs
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
    local rev, downs, labels, deps
    if at and sig ~= "" and cs[at] == sig then
      rev, downs, labels, deps = fields(cached.revs[at], cached.downs[at], cached.labels[at], cached.deps[at],
        cached.tx[at], n, true)
    end
    if rev and type(cached.msgs[at]) == "string" then
      r = setmetatable(make_record(rev, downs, labels, deps, cached.tx[at], cached.msgs[at], nil, nil, nil, nil, nil,
        place, n, sig), LazyMT)
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
  if dirty then cache.write_revisions(dir, files, fsigs, recs, is_lazy) end
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

return { load_file = load_file, load_all = load_all, materialize = materialize, save_code = cache.save_code, record_from = record_from, error_text = error_text, line_in = line_in, scan = scan, list_files = list_files, load_env = load_env, checksum = checksum,
  sandbox = sandbox }
