--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("INSERT INTO things (id, name) VALUES (3, 'three')")
    op.execute("INSERT INTO things (id, name) VALUES (1, 'dup')")
  end,
  downgrade = function(op)

  end,
}
