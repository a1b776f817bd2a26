-- The kit's domain tables (configs, artifacts, config_artifacts, tasks), as in the seed framework, defined into a
-- registry the caller chooses so that using the helpers never registers models behind anyone's back.
local model = require("luamig.model")
local t = require("luamig.types")

-- define(metadata) -> { Config, Artifact, ConfigArtifact, Task }, in dependency order
local function define(md)
  local Config = model.Entity("configs", {
    { "name", t.string, index = true },
    { "data", t.json },
  }, { metadata = md })
  local Artifact = model.Entity("artifacts", {
    { "parent_id", t.ulid, nullable = true, references = "artifacts.id", ondelete = "SET NULL", index = true },
    { "data", t.blob },
    { "level", t.integer, index = true },
  }, { metadata = md })
  local ConfigArtifact = model.Table("config_artifacts", {
    { "config_id", t.ulid, references = "configs.id", ondelete = "CASCADE" },
    { "artifact_id", t.ulid, references = "artifacts.id", ondelete = "CASCADE" },
    model.primary_key { "config_id", "artifact_id" },
    model.unique { "artifact_id", name = "uq_artifact_id" },
  }, { metadata = md })
  local Task = model.Entity("tasks", {
    { "command", t.text },
    { "task_type", t.text, server_default = "shell" },
    { "parameters", t.json, nullable = true },
    { "enabled", t.boolean, server_default = true },
  }, { metadata = md })
  return { Config = Config, Artifact = Artifact, ConfigArtifact = ConfigArtifact, Task = Task }
end

return { define = define }
