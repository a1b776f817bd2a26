--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.create_table("données_été", { { "clé", t.integer } })
    op.add_column("things", { "名前", t.text })
    error("stop after unicode names")
  end,
  downgrade = function(op)

  end,
}
