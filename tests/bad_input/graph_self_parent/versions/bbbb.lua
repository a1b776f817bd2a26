--- revision bbbb00000002
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "bbbb00000002",
  upgrade = function(op)

  end,
  downgrade = function(op)

  end,
}
