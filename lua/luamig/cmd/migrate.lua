-- What upgrade, downgrade and stamp share: running online, or writing the SQL (--sql) with no connection.
local exitcodes = require("luamig.exitcodes")

local format, ipairs = string.format, ipairs
local reconnect

-- offline_runner(ctx, from_spec) -> runner writing SQL to stdout, assuming the database is at from_spec
-- (nil or "base": an empty database, so the version tables are created first); or nil, message, code
local function offline_runner(ctx, from_spec)
  local stdout = io.stdout
  -- progress goes to stderr; when that is not a terminal, one write per migration is needless in this fast mode
  if not require("luamig.core").isatty(2) then io.stderr:setvbuf("full") end
  local runner, err = ctx:writer(function(s) stdout:write(s) end, from_spec)
  if not runner then return nil, err, exitcodes.FAILED end
  return runner
end

-- split_range("a:b") -> "a", "b"; ("b") -> nil, "b"
local function split_range(spec)
  local from, to = spec:match("^([^:]*):(.*)$")
  if from then return from, to end
  return nil, spec
end

-- backup(ctx) -> true, or nil, message: copies the SQLite database to <db>.<UTC timestamp>.bak with the online
-- backup API before the run changes it
local function backup(ctx)
  local core = require("luamig.core")
  local path = require("luamig.path")
  local db = ctx:connection()
  if not db.path or db.path == "" or db.path == ":memory:" then
    return nil, "--backup: an in-memory database has nothing to back up"
  end
  local stamp = os.date("!%Y%m%dT%H%M%SZ")
  local file = format("%s.%s.bak", db.path, stamp)
  local n = 1
  while core.filetype(file) do
    n = n + 1
    file = format("%s.%s-%d.bak", db.path, stamp, n)
  end
  local ok, err = db.conn:backup(file)
  if not ok then return nil, format("--backup: cannot copy %s to %s: %s", db.path, file, err) end
  ctx:info("backup: " .. (path.display(file):gsub("^%./", "")))
  return true
end

-- lost_commits(graph, committed, heads) -> the upgrades this run saw committed that the database lacks now (a
-- failover to a standby that had not received them)
local function lost_commits(graph, committed, heads)
  local have = graph:ancestors(heads)
  local lost = {}
  for _, c in ipairs(committed) do
    if c.direction == "upgrade" and not have[c.id] then lost[#lost + 1] = c.id end
  end
  return lost
end

-- reconnect(ctx, runner, direction, spec, opts, err) -> runner, steps applied, error: after the connection was
-- lost, up to opts.reconnect times: connect again (a multi-host URL finds the new primary), take the lock again,
-- read the version rows again and go on; back-off from 0.5 s doubling to 10 s
function reconnect(ctx, runner, direction, spec, opts, err)
  local wait = require("luamig.wait")
  local delay, applied = 0.5, #runner.committed
  local committed = runner.committed
  for attempt = 1, opts.reconnect do
    ctx:warn(format("%s; reconnecting in %g s (%d of %d)", err.msg, delay, attempt, opts.reconnect))
    ctx:drop_connection()
    wait.sleep(delay)
    delay = math.min(delay * 2, 10)
    local r, rerr = ctx:runner()
    if r then
      local heads = r:heads()
      if heads then
        for _, id in ipairs(lost_commits(r.graph, committed, heads)) do
          ctx:warn(format("%s was committed before the connection was lost, but the server luamig reconnected to "
            .. "does not have it (a failover lost it): applying it again", id))
          applied = applied - 1
        end
      end
      runner = r
      local n, merr = r:migrate(direction, spec, opts)
      for _, c in ipairs(r.committed) do committed[#committed + 1] = c end
      if n then return r, applied + n end
      applied = applied + #r.committed
      err = merr
      if not merr.connection_lost then return r, nil, merr end
    else
      err = { msg = rerr, connection_lost = true }
    end
  end
  return runner, nil, err
end

local function report_json(ctx, direction, n, heads)
  local json = require("luamig.json")
  ctx:out(json.encode({ command = direction, applied = n, current = json.array(heads or {}) }))
end

local function run(ctx, direction, spec, opts)
  if ctx.options.sql then
    if opts.backup or opts.resume then
      return nil, format("--sql never connects: it cannot take %s", opts.backup and "--backup" or "--resume"),
        exitcodes.USAGE
    end
    local from, to = split_range(spec)
    if direction == "downgrade" and (from == nil or from == "") then
      return nil, "downgrade --sql needs FROM:TO (the revision the database is at, and the target)", exitcodes.USAGE
    end
    if to == "" then return nil, format("--sql %s: the range needs a target after ':'", spec), exitcodes.USAGE end
    local runner, err, code = offline_runner(ctx, from)
    if not runner then return nil, err, code end
    local n, rerr = runner:migrate(direction, to, opts)
    if not n then return nil, rerr, exitcodes.FAILED end
    return true
  end
  if opts.backup then
    local cfg, cerr = ctx:config()
    if not cfg then return nil, cerr, exitcodes.FAILED end
    local u = require("luamig.url").parse(cfg.url)
    local d = u and require("luamig.dialect").get(u.dialect)
    if d and not d.backs_up then
      return nil, format("--backup copies SQLite databases; %s", d.backup_hint), exitcodes.USAGE
    end
  end
  if ctx.options.timeout ~= nil then
    local t = tonumber(ctx.options.timeout)
    if not t or t <= 0 or t ~= t or t == math.huge then
      return nil, format("--timeout takes a number of seconds greater than 0, not '%s'", ctx.options.timeout),
        exitcodes.USAGE
    end
    opts.timeout = t
  end
  if ctx.options.reconnect ~= nil then
    local k = tonumber(ctx.options.reconnect)
    if not k or k < 0 or k ~= math.floor(k) or k > 1000 then
      return nil, format("--reconnect takes a number of attempts from 0 to 1000, not '%s'", ctx.options.reconnect),
        exitcodes.USAGE
    end
    opts.reconnect = k
  end
  if direction == "upgrade" and require("luamig.fleet").wanted(ctx) then
    return require("luamig.fleet").upgrade(ctx, spec, opts)
  end
  local runner, err = ctx:runner()
  if not runner then return nil, err, exitcodes.FAILED end
  if opts.backup then opts.before_changes = function() return backup(ctx) end end
  local n, rerr = runner:migrate(direction, spec, opts)
  if not n and rerr.connection_lost and (opts.reconnect or 0) > 0 then
    runner, n, rerr = reconnect(ctx, runner, direction, spec, opts, rerr)
  end
  if not n then return nil, rerr, exitcodes.FAILED end
  if ctx.json then
    report_json(ctx, direction, n, runner:heads())
  elseif n == 0 and ctx.verbose then
    ctx:info(format("nothing to %s: the database is already at %s", direction, spec))
  end
  return true
end

local SQL_OPTION = { long = "--sql", key = "sql", help = "write the SQL to stdout instead of running it (no connection); FROM:TO ranges" }
local TAG_OPTION = { long = "--tag", arg = "TAG", key = "tag", help = "a tag passed to env.lua as context.tag" }
local RESUME_OPTION = { long = "--resume", key = "resume",
  help = "first run again a migration that ran outside a transaction and did not finish" }
local BACKUP_OPTION = { long = "--backup", key = "backup", help = "SQLite: copy the database to <db>.<timestamp>.bak first" }
local SINGLE_OPTION = { long = "--single-transaction", key = "single_transaction", help = "one transaction around the whole run" }
local RECONNECT_OPTION = { long = "--reconnect", arg = "N", key = "reconnect",
  help = "when the connection is lost mid-run, connect again up to N times and go on (default 0)" }
local TIMEOUT_OPTION = { long = "--timeout", arg = "SECONDS", key = "timeout",
  help = "stop a migration (its Lua code and its statements) that runs longer, and roll it back" }

return { run = run, offline_runner = offline_runner, split_range = split_range, report_json = report_json,
  SQL_OPTION = SQL_OPTION, RESUME_OPTION = RESUME_OPTION, BACKUP_OPTION = BACKUP_OPTION, TAG_OPTION = TAG_OPTION, SINGLE_OPTION = SINGLE_OPTION,
  TIMEOUT_OPTION = TIMEOUT_OPTION, RECONNECT_OPTION = RECONNECT_OPTION }
