-- luamig upgrade [TARGET=head]: apply migrations.
local migrate = require("luamig.cmd.migrate")

return {
  summary = "apply migrations up to a target (default head)",
  usage = "luamig upgrade [TARGET=head] [--single-transaction]",
  description = "TARGET: head, heads, a revision id or unique prefix, +N, rev+N, base+N.",
  args_help = "at most one TARGET",
  max_args = 1,
  options = {
    { long = "--single-transaction", key = "single_transaction", help = "one transaction around the whole run" },
  },
  run = function(ctx, args)
    return migrate.run(ctx, "upgrade", args[1] or "head", { single_transaction = ctx.options.single_transaction })
  end,
}
