--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.create_table("made", { { "n", t.integer }, op.check("n > 0", { name = "positive" }) })
    op.execute("INSERT INTO made (n) VALUES (-1)")
  end,
  downgrade = function(op)

  end,
}
