-- luamig downgrade TARGET: revert migrations.
local migrate = require("luamig.cmd.migrate")

return {
  summary = "revert migrations down to a target",
  usage = "luamig downgrade TARGET [--single-transaction]",
  description = "TARGET: -N (e.g. -1), base, a revision id or unique prefix, head-N.",
  args_help = "one TARGET",
  min_args = 1,
  max_args = 1,
  options = {
    { long = "--single-transaction", key = "single_transaction", help = "one transaction around the whole run" },
  },
  run = function(ctx, args)
    return migrate.run(ctx, "downgrade", args[1], { single_transaction = ctx.options.single_transaction })
  end,
}
