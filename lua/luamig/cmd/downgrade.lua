-- luamig downgrade TARGET: revert migrations.
local migrate = require("luamig.cmd.migrate")

return {
  summary = "revert migrations down to a target",
  usage = "luamig downgrade TARGET [--sql] [--tag TAG] [--single-transaction] [--resume]\n  [--timeout SECONDS] [--reconnect N]",
  description = "TARGET: -N (e.g. -1), base, a revision id or unique prefix, head-N, label@-1, label@base;\n"
    .. "with --sql FROM:TO (the revision the database is at, and the target).",
  args_help = "one TARGET",
  min_args = 1,
  max_args = 1,
  options = { migrate.SQL_OPTION, migrate.TAG_OPTION, migrate.SINGLE_OPTION, migrate.RESUME_OPTION,
    migrate.TIMEOUT_OPTION, migrate.RECONNECT_OPTION },
  run = function(ctx, args)
    return migrate.run(ctx, "downgrade", args[1], { single_transaction = ctx.options.single_transaction,
      resume = ctx.options.resume })
  end,
}
