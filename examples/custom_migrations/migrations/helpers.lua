-- The application's migration helpers, in the kit's style: each takes `op`. They are written from the models, so
-- a helper creates exactly what app/models.lua describes (and what autogenerate would write).
local model = require("luamig.model")
local models = require("app.models")

local M = {}

for name, m in pairs({ users = models.User, orders = models.Order }) do
  M["create_" .. name .. "_table"] = function(op) model.run_ops(op, model.create_ops(m, op.dialect)) end
  M["drop_" .. name .. "_table"] = function(op) model.run_ops(op, model.drop_ops(m, op.dialect)) end
end

-- seed_admin(op): data as well as schema
function M.seed_admin(op)
  op.bulk_insert("users", { { id = "01JADM1N000000000000000000", email = "admin@example.org", name = "Admin" } })
end

return M
