-- What upgrade, downgrade and stamp share: running online, or writing the SQL (--sql) with no connection.
local exitcodes = require("luamig.exitcodes")
local runtime = require("luamig.runtime")

local format = string.format

-- offline_runner(ctx, from_spec) -> runner writing SQL to stdout, assuming the database is at from_spec
-- (nil or "base": an empty database, so the version tables are created first); or nil, message, code
local function offline_runner(ctx, from_spec)
  local graph, err = ctx:graph()
  if not graph then return nil, err, exitcodes.FAILED end
  local u, uerr = require("luamig.url").parse(ctx._cfg.url)
  if not u then return nil, uerr, exitcodes.FAILED end
  local dialect, derr = require("luamig.dialect").get(u.dialect)
  if not dialect then return nil, derr, exitcodes.FAILED end
  local stdout = io.stdout
  -- progress goes to stderr; when that is not a terminal, one write per migration is needless in this fast mode
  if not require("luamig.core").isatty(2) then io.stderr:setvbuf("full") end
  local runner = runtime.new({ graph = graph, cfg = ctx._cfg, dialect = dialect, verbose = ctx.verbose,
    emit = function(s) stdout:write(s) end, heads = {}, progress = function(line) ctx:info(line) end })
  local from_db = from_spec ~= nil and from_spec ~= "" and from_spec ~= "base"
  if from_db then
    local heads, herr = runner:resolve_upgrade(from_spec, {})
    if not heads then return nil, format("--sql %s:...: %s", from_spec, herr), exitcodes.FAILED end
    runner.offline_heads = heads
  end
  runner.tables_ready = from_db
  return runner
end

-- split_range("a:b") -> "a", "b"; ("b") -> nil, "b"
local function split_range(spec)
  local from, to = spec:match("^([^:]*):(.*)$")
  if from then return from, to end
  return nil, spec
end

local function report_json(ctx, direction, n, heads)
  local json = require("luamig.json")
  ctx:out(json.encode({ command = direction, applied = n, current = json.array(heads or {}) }))
end

local function run(ctx, direction, spec, opts)
  if ctx.options.sql then
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
  local runner, err = ctx:runner()
  if not runner then return nil, err, exitcodes.FAILED end
  local n, rerr = runner:migrate(direction, spec, opts)
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
local SINGLE_OPTION = { long = "--single-transaction", key = "single_transaction", help = "one transaction around the whole run" }

return { run = run, offline_runner = offline_runner, split_range = split_range, report_json = report_json,
  SQL_OPTION = SQL_OPTION, TAG_OPTION = TAG_OPTION, SINGLE_OPTION = SINGLE_OPTION }
