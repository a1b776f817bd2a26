--- revision bbbb00000002
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)

  end,
  downgrade = function(op)

  end,
}
