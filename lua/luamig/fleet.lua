-- Fleets: one command over many databases, or many schemas of one database (schema per tenant). Each target is
-- migrated under its own lock by its own runner, N at a time in one process: every target runs in a worker
-- coroutine, and a worker waiting for PostgreSQL yields (luamig.wait) to the scheduler here, which polls the
-- workers' sockets. The revision graph and env.lua are loaded once for all; a worker keeps its connection to the
-- main URL from one schema to the next (the search_path changes, nothing else), so a fleet of schemas uses at
-- most N + 1 connections (the one more: --targets-sql's query), plus a heartbeat connection per target migrating
-- under a lease.
--
-- A target's result: { target, status = "applied" | "at_head" | "failed" | "not_started", from, to, applied,
-- failed_revision, error, ms }.
local core = require("luamig.core")
local wait = require("luamig.wait")
local url_mod = require("luamig.url")

local pairs = pairs
local format, concat, ipairs, pcall, xpcall, tostring, type, min, max, huge = string.format, table.concat, ipairs,
  pcall, xpcall, tostring, type, math.min, math.max, math.huge
local create, resume, status = coroutine.create, coroutine.resume, coroutine.status

local M = {}

-- parse_line(line) -> a target { url = ... } or { schema = ... }, nil for a blank or comment line; or false, message
local function parse_line(line)
  line = line:gsub("#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
  if line == "" then return nil end
  local schema = line:match("^schema=(.+)$")
  if schema then return { schema = schema } end
  if line:find("://", 1, true) then return { url = line } end
  return false, format("'%s' is neither a URL nor schema=NAME", url_mod.mask(line))
end

-- read_file(path) -> targets, or nil, message naming the file and line
function M.read_file(path)
  local f, err = io.open(path, "r")
  if not f then return nil, format("--targets: cannot read %s", tostring(err)) end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    local t, terr = parse_line(line)
    if t == false then
      f:close()
      return nil, format("--targets %s:%d: %s", path, n, terr)
    end
    if t then out[#out + 1] = t end
  end
  f:close()
  return out
end

-- from_rows(rows) -> targets: the first column of each row; a value with :// is a URL, else a schema name
function M.from_values(values)
  local out = {}
  for _, v in ipairs(values) do
    v = tostring(v)
    out[#out + 1] = v:find("://", 1, true) and { url = v } or { schema = v }
  end
  return out
end

-- from_sql(ctx, sql) -> targets, or nil, message: the rows of a query on the main URL
function M.from_sql(ctx, sql)
  local db, err = ctx:connect()
  if not db then return nil, err end
  local rows, names = db.conn:query(sql)
  if not rows then return nil, format("--targets-sql: %s", tostring(names)) end
  local values = {}
  for _, row in ipairs(rows) do
    local v = names and names[1] and row[names[1]]
    if v ~= nil then values[#values + 1] = v end
  end
  return M.from_values(values)
end

-- label(t) -> how a target is shown: schema=NAME, or its URL with the password masked
local function label(t)
  if t.schema then return "schema=" .. t.schema end
  return url_mod.mask(t.url)
end
M.label = label

-- Running workers ------------------------------------------------------------------------------------------------

-- run_workers(n, body): n coroutines running body(slot) until each returns; a worker's yield is a request: { fd }
-- (resume it when the descriptor is readable) or { wake } (at that core.clock() time)
local function run_workers(n, body)
  local ws = {}
  for i = 1, n do
    local co = create(function() body(i) end)
    wait.adopt(co)
    ws[i] = { co = co, ready = true }
  end
  local alive = n
  while alive > 0 do
    for _, w in ipairs(ws) do
      if w.co and w.ready then
        local ok, req = resume(w.co)
        if not ok then error(req, 0) end
        if status(w.co) == "dead" then
          w.co = nil
          alive = alive - 1
        else
          w.req, w.ready = req or { wake = 0 }, false
        end
      end
    end
    if alive == 0 then break end
    local fds, soon = {}, huge
    for _, w in ipairs(ws) do
      if w.co then
        if w.req.fd then fds[#fds + 1] = w.req.fd else soon = min(soon, w.req.wake) end
      end
    end
    local ready = core.poll(fds, soon == huge and 3600 or max(0, soon - core.clock())) or {}
    local now = core.clock()
    for _, w in ipairs(ws) do
      if w.co and ((w.req.fd and ready[w.req.fd]) or (w.req.wake and w.req.wake <= now)) then w.ready = true end
    end
  end
end

-- Per target -------------------------------------------------------------------------------------------------------

-- slot_db(ctx, slot, t) -> the connection a worker migrates schema t on (its own, to the main URL, kept from one
-- schema to the next), or nil, message
local function slot_db(ctx, slot, t)
  if slot.db == nil then
    local c = ctx:for_target({})
    local db, err = c:connect()
    if not db then return nil, err end
    if db.server and db.server.pooled then
      -- behind a pooler every schema needs its SET LOCALs: a connection of its own per target
      db.conn:close()
      slot.db = false
    else
      slot.db = db
    end
  end
  if not slot.db then return nil end
  local db = slot.db
  local rows, err = db.conn:query("SELECT 1 AS present FROM pg_catalog.pg_namespace WHERE nspname = ?", { t.schema })
  if not rows then return nil, format("cannot look for schema %s on %s: %s", t.schema, db.url, err) end
  if not rows[1] then return nil, format("schema %s does not exist on %s", t.schema, db.url) end
  local ok, serr = db.conn:exec(format('SET search_path TO "%s"', (t.schema:gsub('"', '""'))))
  if not ok then return nil, format("cannot SET search_path on %s: %s", db.url, serr) end
  return db
end

-- upgrade_one(ctx, slot, t, spec, opts) -> result
local function upgrade_one(ctx, slot, t, spec, opts)
  local t0 = core.clock()
  local res = { target = label(t), status = "failed", applied = 0 }
  local c = ctx:for_target(t)
  local shared
  if t.schema and not t.url and ctx:dialect_name() == "postgresql" then
    local db, err = slot_db(ctx, slot, t)
    if err then
      res.error = err
      return res
    end
    if db then
      c:adopt_connection(db)
      shared = true
    end
  end
  local function finish()
    c:release_lock()
    if shared then c:disown_connection() end
    c:close()
    res.ms = math.floor((core.clock() - t0) * 1000 + 0.5)
    return res
  end
  local runner, err = c:runner()
  if not runner then
    res.error = type(err) == "table" and err.msg or tostring(err)
    return finish()
  end
  -- the heads as one string; nil (null in --json) for a database that has no revision yet
  local function heads()
    local h = runner:heads()
    return h and #h > 0 and concat(h, ",") or nil
  end
  res.from = heads()
  local n, merr = runner:migrate("upgrade", spec, { reconnect = opts.reconnect })
  res.to = heads()
  if n then
    res.applied = n
    res.status = n > 0 and "applied" or "at_head"
  else
    res.applied = #runner.committed
    res.error = merr.msg
    res.failed_revision = merr.revision
  end
  return finish()
end

-- run(ctx, targets, opts) -> results (one per target, in the targets' order). opts: parallel (default 4),
-- on_error ("continue" | "stop"), canary (K), target (default "head"), each(result, index) called as each
-- target ends (not_started ones at the end), reconnect
function M.run(ctx, targets, opts)
  local results = {}
  local parallel = opts.parallel or 4
  local stopped = false
  local slots = {}
  local function wave(from, to)
    local nextk = from
    local workers = min(parallel, to - from + 1)
    if workers < 1 then return end
    run_workers(workers, function(slot)
      slots[slot] = slots[slot] or {}
      while not stopped and nextk <= to do
        local k = nextk
        nextk = nextk + 1
        local ok, res = xpcall(upgrade_one, debug.traceback, ctx, slots[slot], targets[k], opts.target or "head", opts)
        if not ok then
          res = { target = label(targets[k]), status = "failed", applied = 0, error = "internal error: " .. tostring(res) }
        end
        results[k] = res
        if res.status == "failed" and opts.on_error == "stop" then stopped = true end
        if opts.each then opts.each(res, k) end
      end
    end)
  end
  local canary = min(opts.canary or 0, #targets)
  if canary > 0 then
    wave(1, canary)
    for k = 1, canary do
      if results[k].status == "failed" then stopped = true end
    end
  end
  if not stopped then wave(canary + 1, #targets) end
  for _, s in pairs(slots) do
    if s.db then pcall(s.db.conn.close, s.db.conn) end
  end
  for k, t in ipairs(targets) do
    if not results[k] then
      results[k] = { target = label(t), status = "not_started", applied = 0 }
      if opts.each then opts.each(results[k], k) end
    end
  end
  return results
end

-- summary(results) -> { applied, at_head, failed, not_started } (counts of targets)
function M.summary(results)
  local s = { applied = 0, at_head = 0, failed = 0, not_started = 0 }
  for _, r in ipairs(results) do s[r.status] = s[r.status] + 1 end
  return s
end

-- line(result, k, n) -> the progress line of a target
function M.line(r, k, n)
  local head = format("[%d/%d] %s: ", k, n, r.target)
  local ms = r.ms and format(" (%d ms)", r.ms) or ""
  if r.status == "failed" then
    return head .. format("failed%s: %s%s", r.failed_revision and (" at " .. r.failed_revision) or "",
      tostring(r.error), ms)
  end
  if r.status == "not_started" then return head .. "not started" end
  local at = (r.to == nil or r.to == "") and "base" or r.to
  return head .. format("%d applied, at %s%s", r.applied, at, ms)
end

-- The command line ----------------------------------------------------------------------------------------------

M.OPTIONS = {
  { long = "--targets", arg = "FILE", key = "targets", help = "a fleet: one URL or schema=NAME per line (# comments)" },
  { long = "--targets-sql", arg = "SQL", key = "targets_sql", help = "a fleet: the rows of a query on the main URL (URLs or schema names)" },
  { long = "--parallel", arg = "N", key = "parallel", help = "fleet: targets migrated at once (default 4)" },
  { long = "--on-error", arg = "continue|stop", key = "on_error", help = "fleet: go on after a failed target (default), or start no new one" },
  { long = "--canary", arg = "K", key = "canary", help = "fleet: the first K targets alone, the rest only if all K succeeded" },
}

-- wanted(ctx) -> whether the command line names a fleet
function M.wanted(ctx) return (ctx.options.targets or ctx.options.targets_sql) and true or false end

-- readonly(cmd) -> cmd taking --targets / --targets-sql too (current, check, verify)
function M.readonly(cmd)
  local inner = { run = cmd.run }
  local options = {}
  for _, o in ipairs(cmd.options or {}) do options[#options + 1] = o end
  for _, o in ipairs(M.OPTIONS) do
    if o.key ~= "on_error" and o.key ~= "canary" then options[#options + 1] = o end
  end
  cmd.options = options
  cmd.usage = cmd.usage .. " [--targets FILE | --targets-sql SQL] [--parallel N]"
  cmd.run = function(ctx, args)
    if M.wanted(ctx) then return M.each_target(ctx, inner, args) end
    return inner.run(ctx, args)
  end
  return cmd
end

local function count(v, what, least)
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < least or n > 10000 then
    return false, format("%s takes a whole number from %d to 10000, not '%s'", what, least, tostring(v))
  end
  return n
end

-- options(o) -> { parallel, on_error, canary } from the command line, or nil, message (a usage error)
function M.options(o)
  local parallel, perr = count(o.parallel, "--parallel", 1)
  if parallel == false then return nil, perr end
  local canary, cerr = count(o.canary, "--canary", 0)
  if canary == false then return nil, cerr end
  local on_error = o.on_error or "continue"
  if on_error ~= "continue" and on_error ~= "stop" then
    return nil, format("--on-error takes continue or stop, not '%s'", tostring(on_error))
  end
  if o.targets and o.targets_sql then return nil, "give --targets or --targets-sql, not both" end
  return { parallel = parallel or 4, canary = canary or 0, on_error = on_error }
end

-- targets(ctx) -> the targets the command line names, or nil, message
function M.targets(ctx)
  local o = ctx.options
  if o.targets then return M.read_file(o.targets) end
  return M.from_sql(ctx, o.targets_sql)
end

-- upgrade(ctx, spec, extra) -> true, or nil, message, exit code: the fleet form of `luamig upgrade`
function M.upgrade(ctx, spec, extra)
  local exitcodes = require("luamig.exitcodes")
  local json = require("luamig.json")
  local opts, oerr = M.options(ctx.options)
  if not opts then return nil, oerr, exitcodes.USAGE end
  if ctx.options.sql then return nil, "--sql writes one database's SQL: it does not take --targets", exitcodes.USAGE end
  local targets, terr = M.targets(ctx)
  if not targets then return nil, terr, exitcodes.FAILED end
  local graph, gerr = ctx:graph()
  if not graph then return nil, gerr, exitcodes.FAILED end
  opts.target, opts.reconnect = spec, extra and extra.reconnect
  local n = #targets
  opts.each = function(r, k)
    if ctx.json then
      ctx:out(json.encode({ target = r.target, status = r.status, from = r.from or json.null, to = r.to or json.null,
        applied = r.applied, failed_revision = r.failed_revision or json.null, error = r.error or json.null,
        ms = r.ms or json.null }))
    elseif not ctx.quiet or r.status == "failed" then
      ctx.say_info(M.line(r, k, n))
    end
  end
  local results = M.run(ctx, targets, opts)
  local s = M.summary(results)
  if ctx.json then
    ctx:out(json.encode({ summary = s }))
  else
    ctx.say_info(format("%d target(s): %d applied, %d at head, %d failed, %d not started", n, s.applied, s.at_head,
      s.failed, s.not_started))
    for k, r in ipairs(results) do
      if r.status == "failed" then ctx.say_info("  failed: " .. M.line(r, k, n)) end
    end
  end
  if s.failed > 0 or s.not_started > 0 then
    return nil, format("%d of %d target(s) failed%s", s.failed, n,
      s.not_started > 0 and format(", %d not started", s.not_started) or ""), exitcodes.FAILED
  end
  return true
end

-- each_target(ctx, cmd, args) -> exit code: a read-only command (current, check, verify) run on every target, N at
-- a time; each target's output lines carry its name, and the exit code is the worst of theirs
function M.each_target(ctx, cmd, args)
  local exitcodes = require("luamig.exitcodes")
  local opts, oerr = M.options(ctx.options)
  if not opts then return nil, oerr, exitcodes.USAGE end
  local targets, terr = M.targets(ctx)
  if not targets then return nil, terr, exitcodes.FAILED end
  local graph, gerr = ctx:graph()
  if not graph then return nil, gerr, exitcodes.FAILED end
  local worst, failed = exitcodes.OK, 0
  local k = 0
  run_workers(min(opts.parallel, #targets), function()
    while k < #targets do
      k = k + 1
      local t = targets[k]
      local c = ctx:for_target(t)
      local name = label(t)
      local out = ctx.say_out
      c.say_out = function(line) out(name .. ": " .. line) end
      c.options = setmetatable({ targets = false, targets_sql = false }, { __index = ctx.options })
      local ok, res, err, code = xpcall(cmd.run, debug.traceback, c, args)
      c:close()
      if not ok then res, err, code = nil, "internal error: " .. tostring(res), exitcodes.FAILED end
      if type(res) == "number" then code = res
      elseif res then code = exitcodes.OK
      else
        code = code or exitcodes.FAILED
        ctx:warn(name .. ": " .. (type(err) == "table" and tostring(err.msg) or tostring(err)))
      end
      if code ~= exitcodes.OK then failed = failed + 1 end
      if code == exitcodes.FAILED or (code > worst and worst ~= exitcodes.FAILED) then worst = code end
    end
  end)
  ctx.say_info(format("%d target(s), %d with a finding or failure", #targets, failed))
  return worst
end

return M
