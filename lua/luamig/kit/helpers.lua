-- The kit's migration helpers: create_configs_table(op) ... drop_tasks_table(op). Each makes the op calls
-- luamig.model.create_calls / drop_calls derive from the kit's table definitions, so a helper creates exactly what
-- the models describe. The definitions live in a private registry: using a helper registers no model.
local model = require("luamig.model")

local kit = require("luamig.kit.tables").define(model.MetaData())

local M = {}

for fname, m in pairs({ configs = kit.Config, artifacts = kit.Artifact, config_artifacts = kit.ConfigArtifact,
  tasks = kit.Task }) do
  M["create_" .. fname .. "_table"] = function(op) model.apply_calls(op, model.create_calls(m, op.dialect)) end
  M["drop_" .. fname .. "_table"] = function(op) model.apply_calls(op, model.drop_calls(m, op.dialect)) end
end

M.tables = kit

return M
