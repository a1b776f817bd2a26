-- Loaded before every command that reads the migrations. The models come from luamig.ini (models = app.models).
local model = require("luamig.model")

return {
  target_metadata = model.metadata,
  -- a table the application manages by itself stays out of autogenerate and check
  include_object = function(name, kind)
    return not (kind == "table" and name == "sessions_cache")
  end,
}
