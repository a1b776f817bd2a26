--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    local n = op.get_bind():query("PRAGMA page_count")[1].page_count
    op.execute("PRAGMA max_page_count = " .. n)
    op.create_table("big", { { "id", t.integer }, { "v", t.text } })
    local rows = {}
    for i = 1, 2000 do rows[i] = { id = i, v = string.rep("x", 200) } end
    op.bulk_insert("big", rows)
  end,
  downgrade = function(op)

  end,
}
