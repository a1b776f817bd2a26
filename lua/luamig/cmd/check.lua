-- luamig check: do the models and the database differ? Exit 3 listing the differences, 0 when they agree.
-- diffs(ctx) is what `revision --autogenerate` uses too.
local exitcodes = require("luamig.exitcodes")

local format, concat, ipairs, pcall, require, type, tostring = string.format, table.concat, ipairs, pcall, require, type,
  tostring

-- load_models(ctx) -> the registry to compare, or nil, message. The modules of the ini's `models =` are required
-- (the project directory is on package.path); env.lua may return `target_metadata` to name another registry.
local function load_models(ctx)
  local cfg = ctx:config()
  local model = require("luamig.model")
  for _, name in ipairs(cfg.models) do
    local ok, err = pcall(require, name)
    if not ok then return nil, format("cannot load the models module '%s': %s", name, tostring(err)) end
  end
  local md = ctx:env() and ctx:env().target_metadata or model.metadata
  if type(md) ~= "table" or type(md.tables) ~= "table" then
    return nil, "env.lua's target_metadata is not a model.MetaData()"
  end
  if #md.tables == 0 and #cfg.models == 0 and not (ctx:env() and ctx:env().target_metadata) then
    return nil, "no models: list the Lua modules that define them in luamig.ini (models = myapp.models), or require "
      .. "them in env.lua"
  end
  return md
end

-- diffs(ctx) -> the differences between the models and the database, the dialect; or nil, message, code
local function diffs(ctx)
  local graph, err = ctx:graph()
  if not graph then return nil, err, exitcodes.FAILED end
  local heads, db = ctx:version_rows()
  if not heads then return nil, db, exitcodes.FAILED end
  local want = graph:effective_heads()
  if concat(want, ",") ~= concat(heads, ",") then
    return nil, format("database is not at head: %s is at %s, the scripts at %s; run `luamig upgrade head` first", db.url,
      #heads == 0 and "<base>" or concat(heads, ", "), #want == 0 and "<base>" or concat(want, ", ")), exitcodes.FAILED
  end
  local md, merr = load_models(ctx)
  if not md then return nil, merr, exitcodes.FAILED end
  local include = ctx:env() and ctx:env().include_object
  if include ~= nil and type(include) ~= "function" then
    return nil, "env.lua's include_object must be a function(name, kind, reflected, compare_to)", exitcodes.FAILED
  end
  local list, derr = require("luamig.autogen").reflect_and_compare(db.conn, db.dialect, md,
    { version_table = ctx:config().version_table, include = include })
  if not list then return nil, derr, exitcodes.FAILED end
  return list, db.dialect
end

return require("luamig.fleet").readonly({
  summary = "compare the models with the database: exit 3 and list the differences, 0 if none",
  usage = "luamig check",
  max_args = 0,
  diffs = diffs,
  load_models = load_models,
  run = function(ctx)
    local list, err, code = diffs(ctx)
    if not list then return nil, err, code end
    if ctx.json then
      local json = require("luamig.json")
      local texts = {}
      for i, d in ipairs(list) do texts[i] = d.text end
      ctx:out(json.encode({ differences = json.array(texts) }))
    else
      for _, d in ipairs(list) do ctx:out(d.text) end
    end
    if #list == 0 then
      ctx:info("No new upgrade operations detected.")
      return true
    end
    return nil, format("%d difference(s) between the models and the database", #list), exitcodes.DIFFERENCE
  end,
})
