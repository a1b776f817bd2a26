-- The script directory: finds migration files, loads each in a fresh environment under pcall, validates the table it
-- returns and turns it into a revision record for the revision graph. Messages name the file (and line).
local core = require("luamig.core")
local path = require("luamig.path")

local type, ipairs, format, setmetatable, pcall, load = type, ipairs, string.format, setmetatable, pcall, load
local collectgarbage = collectgarbage
local sort, gsub, find, tostring = table.sort, string.gsub, string.find, tostring

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
      if n:sub(-4) == ".lua" and n:sub(1, 1) ~= "." and n:sub(1, 1) ~= "_" then
        files[#files + 1] = path.join(dir, n)
      end
    end
  end
  return files
end

-- load_all(dirs) -> list of revision records, or nil, message
local function load_all(dirs)
  local files, err = list_files(dirs)
  if not files then return nil, err end
  local revs = {}
  -- Loading keeps almost everything it allocates (the garbage is about the size of the files read), while each GC
  -- cycle would mark the whole growing set of loaded migrations again: collect once afterwards instead.
  local was_running = collectgarbage("isrunning")
  collectgarbage("stop")
  for _, f in ipairs(files) do
    local r, lerr = load_file(f)
    if not r then
      if was_running then collectgarbage("restart") end
      return nil, lerr
    end
    revs[#revs + 1] = r
  end
  if was_running then collectgarbage("restart") end
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

return { load_file = load_file, load_all = load_all, list_files = list_files, load_env = load_env, checksum = checksum,
  sandbox = sandbox }
