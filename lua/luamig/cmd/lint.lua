-- luamig lint: the safety rules of a deploy (luamig.lint_rules) over the op values of the migrations not yet
-- applied (--all: every file; RANGE: FROM:TO as for history), without writing. With no database reachable, or with
-- --dialect, every file is linted offline. Exit 3 on an error finding (on a warning too with --strict).
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local lint = require("luamig.lint")

local format, ipairs, tonumber = string.format, ipairs, tonumber

local function reversed(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

local FORMATS = { text = true, json = true, github = true }

-- revisions(resolver, graph, range, current) -> the ids to lint in the order they apply, or nil, message, code
local function revisions(resolver, graph, range, current)
  if range then
    local ids, err, not_range = resolver:range(range, current or {})
    if not ids then return nil, not_range and format("%s: %s", range, err) or err,
      not_range and exitcodes.USAGE or exitcodes.FAILED end
    return reversed(ids)
  end
  if not current then return reversed(graph:range(nil, nil)) end
  return graph:plan_upgrade(current, graph:heads())
end

return {
  summary = "check pending migrations for locks, rewrites and data loss (exit 3 on an error)",
  usage = "luamig lint [RANGE] [--all] [--downgrade] [--dialect D] [--format text|json|github] [--strict] [--plan]",
  description = "RANGE: FROM:TO as for history. Default: the migrations the database has not applied; with no database "
    .. "reachable, or with --dialect, every file.",
  max_args = 1,
  args_help = "at most one RANGE",
  options = {
    { long = "--all", key = "all", help = "every migration file, applied or not" },
    { long = "--downgrade", key = "downgrade", help = "the downgrades too" },
    { long = "--dialect", arg = "D", key = "dialect", help = "lint offline for sqlite or postgresql" },
    { long = "--format", arg = "F", key = "format", help = "text (default), json or github (workflow annotations)" },
    { long = "--strict", key = "strict", help = "exit 3 on a warning too" },
    { long = "--plan", key = "plan", help = "also show the lock each op takes on each table" },
  },
  run = function(ctx, args)
    local o = ctx.options
    local fmt = o.format or (ctx.json and "json" or "text")
    if not FORMATS[fmt] then return nil, format("--format %s: use text, json or github", fmt), exitcodes.USAGE end
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local cfg = ctx:config()
    local resolver = ctx:resolver()
    local dialects = require("luamig.dialect")
    local dialect, db, current
    if o.dialect then
      local derr
      dialect, derr = dialects.get(o.dialect)
      if not dialect then return nil, format("--dialect %s: %s", o.dialect, derr), exitcodes.USAGE end
    else
      local heads, hdb = ctx:version_rows()
      if heads then
        local known, kerr = resolver:check_known(heads)
        if not known then return nil, kerr, exitcodes.FAILED end
        db, dialect = hdb, hdb.dialect
        if not o.all then current = heads end
      else
        local u = require("luamig.url").parse(cfg.url or "")
        dialect = u and dialects.get(u.dialect)
        if not dialect then
          return nil, format("cannot lint: %s; and no dialect to lint offline for (--dialect sqlite|postgresql)", hdb),
            exitcodes.FAILED
        end
        ctx:warn(format("luamig: %s; linting every file offline for %s", hdb, dialect.name))
      end
    end
    local ids, rerr, rcode = revisions(resolver, graph, args[1], current)
    if not ids then return nil, rerr, rcode end
    -- every file compiled first, as a run compiles what it will apply
    local pok, perr = resolver:prepare(ids)
    if not pok then return nil, perr.msg, exitcodes.FAILED end
    local revs = {}
    for i, id in ipairs(ids) do revs[i] = graph:get(id) end
    -- the models, where the project has them: a drop of what they still define is an error
    local models
    if #cfg.models > 0 or (ctx:env() and ctx:env().target_metadata) then
      local md, merr = require("luamig.cmd.check").load_models(ctx)
      if not md then return nil, merr, exitcodes.FAILED end
      models = md
    end
    local version = cfg.lint_postgres_version
    if not version and db and dialect.name == "postgresql" then
      local rows = db.conn:query("SHOW server_version_num")
      local n = rows and rows[1] and tonumber(rows[1].server_version_num)
      version = n and n // 10000
    end
    local findings, plan = lint.run(revs, { dialect = dialect, cfg = cfg, db = db, models = models,
      version = version or 15, downgrade = o.downgrade, plan = o.plan })
    if not findings then return nil, plan, exitcodes.FAILED end
    local count = { error = 0, warning = 0, info = 0 }
    for _, f in ipairs(findings) do count[f.severity] = count[f.severity] + 1 end
    if fmt == "json" then
      local list = {}
      for i, f in ipairs(findings) do
        list[i] = { rule = f.rule, severity = f.severity, revision = f.revision, file = f.file, line = f.line,
          table = f.table, column = f.column, message = f.message, safe = f.safe, direction = f.direction }
      end
      local doc = { dialect = dialect.name, migrations = #revs, errors = count.error, warnings = count.warning,
        infos = count.info, findings = json.array(list) }
      if plan then
        local pl = {}
        for i, m in ipairs(plan) do
          local steps = {}
          for k, s in ipairs(m.ops) do
            local locks = {}
            for j, l in ipairs(s.locks) do
              locks[j] = { table = l.table, mode = l.mode, rewrite = l.rewrite, scan = l.scan }
            end
            steps[k] = { line = s.line, op = s.op, transaction = s.transaction, locks = json.array(locks) }
          end
          pl[i] = { revision = m.revision, file = m.file, direction = m.direction, ops = json.array(steps) }
        end
        doc.plan = json.array(pl)
      end
      ctx:out(json.encode(doc))
    else
      local show = fmt == "github" and lint.github or lint.text
      for _, f in ipairs(findings) do ctx:out(show(f)) end
      if plan then for _, line in ipairs(lint.plan_lines(plan)) do ctx:out(line) end end
      ctx:info(format("%d migration(s) linted for %s: %d error(s), %d warning(s), %d info", #revs, dialect.name,
        count.error, count.warning, count.info))
    end
    if count.error > 0 or (o.strict and count.warning > 0) then
      return nil, format("lint: %d error(s), %d warning(s)%s", count.error, count.warning,
        o.strict and count.error == 0 and " (--strict)" or ""), exitcodes.DIFFERENCE
    end
    return true
  end,
}
