-- require("luamig"): the Lua API. Every function returns its result, or nil and a message; none raises.
--
--   local m, err = luamig.open{ config = "luamig.ini" }            -- or { url = ..., script_location = ... }
--   m:upgrade("head"); m:downgrade("-1"); m:current(); m:history(); m:heads(); m:close()
--   local rev, err = luamig.init{ url = ..., script_location = ... } -- at start-up: lock, upgrade to head, revision
--   local results, summary = luamig.fleet{ url = ..., targets = { "schema=t1", "schema=t2" }, parallel = 4 }
--
-- open's options: config (an ini file; without it nothing is read from disk but the scripts), section, url,
-- script_location, version_table, lock_timeout, statement_timeout, ddl_lock_timeout, ddl_lock_retries, models (a
-- list of module names), x (a table for env.lua), log (a function(line) that receives progress lines; none are
-- printed otherwise).
local context = require("luamig.context")

local format, concat, ipairs, type, tostring, setmetatable, xpcall, traceback = string.format, table.concat, ipairs,
  type, tostring, setmetatable, xpcall, debug.traceback

local Migrator = {}
Migrator.__index = Migrator

local function message(err)
  if type(err) == "table" then
    local lines = { tostring(err.msg) }
    for _, d in ipairs(err.details or {}) do
      if not d:match("^stack traceback") then lines[#lines + 1] = d end
    end
    return concat(lines, "\n")
  end
  return tostring(err)
end

-- guard(fn, ...) -> fn's results, or nil, message: nothing raised inside crosses the API
local function guard(fn, ...)
  local res = table.pack(xpcall(fn, traceback, ...))
  if not res[1] then return nil, "luamig: internal error: " .. tostring(res[2]) end
  return table.unpack(res, 2, res.n)
end

local OVERRIDES = { "version_table", "lock_timeout", "statement_timeout", "ddl_lock_timeout", "ddl_lock_retries",
  "lease_ttl", "lease_heartbeat" }

-- api_context(opts, what) -> a context for the Lua API's options, its settings, or nil, message
local function api_context(opts, what)
  if type(opts) ~= "table" then return nil, format("luamig.%s takes a table of options", what) end
  local log = opts.log
  if log ~= nil and type(log) ~= "function" then return nil, format("luamig.%s: log must be a function(line)", what) end
  local function say(line) if log then log(line) end end
  local ctx = context.new({ options = { config = opts.config, name = opts.section, url = opts.url, x = opts.x or {},
    lock = opts.lock, schema = opts.schema }, no_file = opts.config == nil, command = "api", out = say, info = say,
    warn = function(line) say("warning: " .. line) end })
  local cfg, err = ctx:config()
  if not cfg then
    ctx:close()
    return nil, err
  end
  return ctx, cfg
end

local function open(opts)
  local ctx, cfg = api_context(opts, "open")
  if not ctx then return nil, cfg end
  if opts.script_location then
    local path = require("luamig.path")
    cfg.script_location = path.absolute(opts.script_location)
    cfg.version_locations = nil
  end
  for _, k in ipairs(OVERRIDES) do
    if opts[k] ~= nil then cfg[k] = opts[k] end
  end
  if opts.models then cfg.models = opts.models end
  local graph, gerr = ctx:graph()
  if not graph then
    ctx:close()
    return nil, gerr
  end
  local db, derr = ctx:connect()
  if not db then
    ctx:close()
    return nil, derr
  end
  return setmetatable({ ctx = ctx }, Migrator)
end

-- migrate(self, direction, target) -> the number of migrations applied, or nil, message. The migration lock is held
-- for the run and released after it; the connection stays open for the next call.
local function migrate(self, direction, target)
  local ctx = self.ctx
  if not ctx then return nil, "this luamig handle is closed" end
  if type(target) ~= "string" then return nil, format("%s: the target must be a string (e.g. \"head\")", direction) end
  local runner, err = ctx:runner()
  if not runner then return nil, err end
  -- the lock is given back on every path, also when something raises inside the run (a host's log function)
  local res = table.pack(pcall(runner.migrate, runner, direction, target, {}))
  local db = ctx:connection()
  if not res[1] and db and db.conn:in_transaction() then
    -- what raised left its step's transaction open: roll it back (nothing of it stays) before unlocking
    local ok, rerr = db.conn:exec("ROLLBACK")
    if not ok then res[2] = tostring(res[2]) .. "; ROLLBACK failed too: " .. tostring(rerr) end
  end
  pcall(ctx.release_lock, ctx)
  if not res[1] then error(res[2], 0) end
  local n, rerr = res[2], res[3]
  if not n then return nil, message(rerr) end
  return n
end

function Migrator:upgrade(target) return guard(migrate, self, "upgrade", target or "head") end
function Migrator:downgrade(target) return guard(migrate, self, "downgrade", target) end

-- current() -> the revisions the database is at (a list; empty at base)
function Migrator:current()
  return guard(function()
    if not self.ctx then return nil, "this luamig handle is closed" end
    local heads, err = self.ctx:version_rows()
    if not heads then return nil, err end
    return heads
  end)
end

-- heads() -> the heads of the scripts (a list)
function Migrator:heads()
  return guard(function()
    if not self.ctx then return nil, "this luamig handle is closed" end
    local out = {}
    for i, h in ipairs(self.ctx:graph():heads()) do out[i] = h end
    table.sort(out)
    return out
  end)
end

-- history() -> every revision, newest first: { revision, down_revisions, branch_labels, depends_on, message, path,
-- is_head, is_branch_point, is_merge_point, is_current }
function Migrator:history()
  return guard(function()
    if not self.ctx then return nil, "this luamig handle is closed" end
    local graph = self.ctx:graph()
    local heads, err = self.ctx:version_rows()
    if not heads then return nil, err end
    local current = {}
    for _, h in ipairs(heads) do current[h] = true end
    local fmt = require("luamig.format")
    local out = {}
    for i, id in ipairs(graph:range(nil, nil)) do out[i] = fmt.record(graph, graph:get(id), current) end
    return out
  end)
end

function Migrator:close()
  if self.ctx then
    self.ctx:close()
    self.ctx = nil
  end
  return true
end

Migrator.__close = Migrator.close
Migrator.__gc = Migrator.close

-- init(opts) -> the revision the database is at after upgrading to head (several joined by ","), or nil, message:
-- what a service calls at start-up. Any number of processes may call it at once.
local function init(opts)
  local m, err = guard(open, opts)
  if not m then return nil, err end
  local n, uerr = m:upgrade((type(opts) == "table" and opts.target) or "head")
  if not n then
    m:close()
    return nil, uerr
  end
  local heads, herr = m:current()
  m:close()
  if not heads then return nil, herr end
  return concat(heads, ",")
end

-- fleet(opts) -> results, summary; or nil, message: upgrade many targets, opts.parallel at a time (luamig.fleet).
-- opts: open's options (url, config, script_location, ...) for what the targets share, and targets (a list of URLs
-- and "schema=NAME" strings, or of { url = } / { schema = } tables) or targets_sql (a query on url), target
-- (default "head"), parallel (default 4), on_error ("continue" | "stop"), canary (K), each (function(result, i)).
-- results: one per target, in the targets' order: { target, status, from, to, applied, failed_revision, error, ms };
-- summary: { applied, at_head, failed, not_started }.
local function fleet(opts)
  local ctx, cfg = api_context(opts, "fleet")
  if not ctx then return nil, cfg end
  local fl = require("luamig.fleet")
  local function done(...)
    ctx:close()
    return ...
  end
  if opts.script_location then
    cfg.script_location = require("luamig.path").absolute(opts.script_location)
    cfg.version_locations = nil
  end
  for _, k in ipairs(OVERRIDES) do
    if opts[k] ~= nil then cfg[k] = opts[k] end
  end
  local fo, oerr = fl.options({ parallel = opts.parallel, canary = opts.canary, on_error = opts.on_error })
  if not fo then return done(nil, "luamig.fleet: " .. oerr) end
  local targets = {}
  if opts.targets_sql then
    local t, terr = fl.from_sql(ctx, opts.targets_sql)
    if not t then return done(nil, terr) end
    targets = t
  elseif type(opts.targets) == "table" then
    for i, t in ipairs(opts.targets) do
      if type(t) == "string" then
        t = t:match("^schema=(.+)$") and { schema = t:match("^schema=(.+)$") } or { url = t }
      end
      if type(t) ~= "table" or not (t.url or t.schema) then
        return done(nil, format("luamig.fleet: targets[%d] is neither a URL nor schema=NAME", i))
      end
      targets[i] = t
    end
  else
    return done(nil, "luamig.fleet: give targets (a list) or targets_sql (a query)")
  end
  local graph, gerr = ctx:graph()
  if not graph then return done(nil, gerr) end
  fo.target, fo.each = opts.target or "head", opts.each
  local results = fl.run(ctx, targets, fo)
  return done(results, fl.summary(results))
end

return {
  open = function(opts) return guard(open, opts) end,
  fleet = function(opts) return guard(fleet, opts) end,
  init = init,
  version = require("luamig.core").version,
}
