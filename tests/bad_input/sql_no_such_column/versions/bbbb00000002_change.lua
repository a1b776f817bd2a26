--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("UPDATE things SET nope = 1")
  end,
  downgrade = function(op)

  end,
}
