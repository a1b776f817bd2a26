--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY)")
    op.execute("INSERT INTO things (id, name, qty) VALUES (9, 'orphan', 42)")
    op.create_foreign_key("fk_things_owner", "things", "owners", { "qty" }, { "id" })
  end,
  downgrade = function(op)

  end,
}
