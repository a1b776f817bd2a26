-- The kit's migration helpers: create_configs_table(op) ... drop_tasks_table(op). Each runs the op values
-- luamig.model.create_ops / drop_ops derive from the kit's table definitions, so a helper creates exactly what
-- the models describe. The definitions live in a private registry: using a helper registers no model.
local model = require("luamig.model")

local kit = require("luamig.kit.tables").define(model.MetaData())

local M = {}

for fname, m in pairs({ configs = kit.Config, artifacts = kit.Artifact, config_artifacts = kit.ConfigArtifact,
  tasks = kit.Task }) do
  M["create_" .. fname .. "_table"] = function(op) model.run_ops(op, model.create_ops(m, op.dialect)) end
  M["drop_" .. fname .. "_table"] = function(op) model.run_ops(op, model.drop_ops(m, op.dialect)) end
end

M.tables = kit

return M
