-- The kit's tables as models in the default registry (luamig.model.metadata): require this module from env.lua or
-- your models to make configs, artifacts, config_artifacts and tasks part of autogenerate.
local model = require("luamig.model")

return require("luamig.kit.tables").define(model.metadata)
