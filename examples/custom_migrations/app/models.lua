-- The application's models: the kit's tables (configs, artifacts, config_artifacts, tasks) and its own.
local model = require("luamig.model")
local t = require("luamig.types")
require("luamig.kit.models")

local User = model.Entity("users", {
  { "email", t.string, unique = true, index = true },
  { "name", t.string },
  { "is_active", t.boolean, server_default = true },
  -- { "phone", t.string, nullable = true },
})

local Order = model.Entity("orders", {
  { "user_id", t.ulid, references = "users.id", ondelete = "CASCADE", index = true },
  { "total_amount", t.float },
  { "status", t.string, server_default = "pending" },
})

return { User = User, Order = Order }
