--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.add_column("things", { "note", t.text, nulable = true })
  end,
  downgrade = function(op)

  end,
}
