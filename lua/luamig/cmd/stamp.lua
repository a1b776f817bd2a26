-- luamig stamp REV...: set the version table without running migrations.
local exitcodes = require("luamig.exitcodes")
local migrate = require("luamig.cmd.migrate")

return {
  summary = "set the database's revision(s) without running migrations",
  usage = "luamig stamp REV... [--purge] [--sql]",
  description = "REV: a revision, head, heads, base, label@head. Each replaces the rows on its own line of descent.\n"
    .. "--purge empties the version table first (also when it names revisions no file defines).",
  args_help = "at least one REV",
  min_args = 1,
  options = {
    { long = "--purge", key = "purge", help = "empty the version table first" },
    migrate.SQL_OPTION,
  },
  run = function(ctx, args)
    local runner, err, code
    local specs = args
    if ctx.options.sql then
      local from
      if #args == 1 then
        from, specs[1] = migrate.split_range(args[1])
      end
      runner, err, code = migrate.offline_runner(ctx, from)
    else
      runner, err = ctx:runner()
      code = exitcodes.FAILED
    end
    if not runner then return nil, err, code end
    local heads, serr = runner:stamp(specs, ctx.options.purge)
    if not heads then return nil, serr, exitcodes.FAILED end
    if ctx.json and not ctx.options.sql then migrate.report_json(ctx, "stamp", 0, heads) end
    return true
  end,
}
