--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.create_table([[x"; DROP TABLE things; --]], { { "id", t.integer } })
    op.execute("INSERT INTO missing_table VALUES (1)")
  end,
  downgrade = function(op)

  end,
}
