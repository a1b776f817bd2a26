--- revision cccc00000003
local t = require("luamig.types")
return {
  revision = "cccc00000003",
  down_revision = "bbbb00000002",
  upgrade = function(op)

  end,
  downgrade = function(op)

  end,
}
