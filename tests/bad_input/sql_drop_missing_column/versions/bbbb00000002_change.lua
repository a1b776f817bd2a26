--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.drop_column("things", "nope")
  end,
  downgrade = function(op)

  end,
}
