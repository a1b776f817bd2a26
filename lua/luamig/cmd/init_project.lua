-- luamig init DIR: a new project, writing luamig.ini and a Makefile here and DIR/{env.lua,helpers.lua,versions/}.
local core = require("luamig.core")
local exitcodes = require("luamig.exitcodes")
local path = require("luamig.path")
local templates = require("luamig.templates")

local format = string.format

local TEMPLATES = { generic = true, helpers = true }

return {
  summary = "start a project: luamig.ini, a Makefile and DIR with env.lua, helpers.lua, versions/",
  usage = "luamig init DIR [--template generic|helpers]",
  args_help = "one DIR",
  min_args = 1,
  max_args = 1,
  options = {
    { short = "-t", long = "--template", arg = "NAME", key = "template", help = "generic (default) or helpers" },
  },
  run = function(ctx, args)
    local dir = args[1]
    local kind = ctx.options.template or "generic"
    if not TEMPLATES[kind] then
      return nil, format("unknown template '%s' (generic or helpers)", kind), exitcodes.USAGE
    end
    -- Refuse before writing anything.
    if path.exists(dir) then
      if not path.isdir(dir) then return nil, format("%s exists and is not a directory; nothing written", dir), exitcodes.FAILED end
      local names = core.listdir(dir) or {}
      if #names > 0 then return nil, format("directory %s is not empty; nothing written", dir), exitcodes.FAILED end
    end
    local config_file = ctx.options.config or "luamig.ini"
    for _, f in ipairs({ config_file, "Makefile" }) do
      if path.exists(f) then return nil, format("%s already exists; nothing written", f), exitcodes.FAILED end
    end
    local module_prefix = path.normalize(dir):gsub("/", ".")
    if not path.exists(dir) then
      local ok, err = core.mkdir(dir)
      if not ok then return nil, format("cannot create %s: %s", dir, err), exitcodes.FAILED end
    end
    local versions = path.join(dir, "versions")
    local ok, err = core.mkdir(versions)
    if not ok then return nil, format("cannot create %s: %s", versions, err), exitcodes.FAILED end
    local files = {
      { config_file, templates.ini(path.normalize(dir)) },
      { "Makefile", templates.makefile() },
      { path.join(dir, "env.lua"), templates.env() },
      { path.join(dir, "helpers.lua"), templates.helpers(kind, module_prefix) },
    }
    for _, f in ipairs(files) do
      local wok, werr = path.write_file(f[1], f[2])
      if not wok then return nil, format("cannot write %s: %s", f[1], werr), exitcodes.FAILED end
      ctx:info("  wrote " .. f[1])
    end
    -- the revision cache luamig keeps beside the files is not for version control
    path.write_file(path.join(versions, ".gitignore"), ".luamig-cache\n.luamig-code\n")
    ctx:info("  made " .. versions .. "/")
    ctx:info(format("Edit %s (url = ...), then: luamig revision -m \"first migration\"", config_file))
    return true
  end,
}
