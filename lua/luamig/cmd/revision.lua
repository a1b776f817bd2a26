-- luamig revision -m MSG: a new migration file after the current head.
local core = require("luamig.core")
local exitcodes = require("luamig.exitcodes")
local path = require("luamig.path")
local templates = require("luamig.templates")
local config_mod = require("luamig.config")

local format, floor = string.format, math.floor

-- slug(message, max): Alembic's: the words of the message joined by "_", lower case, cut at a word boundary.
local function slug(message, max)
  local words = {}
  for w in (message or ""):gmatch("[%w_]+") do words[#words + 1] = w end
  local s = table.concat(words, "_"):lower()
  if #s > max then
    local cut = s:sub(1, max)
    local head = cut:match("^(.*)_[^_]*$")
    s = (head or cut) .. "_"
  end
  return s
end

-- render_file_template(tpl, values): Python %-formatting with names: %(rev)s, %(month).2d, ...
local function render_file_template(tpl, values)
  local bad
  local out = tpl:gsub("%%%(([%w_]+)%)([-#0 +]*%d*%.?%d*)([sdif])", function(k, flags, conv)
    local v = values[k]
    if v == nil then
      bad = k
      return ""
    end
    if conv == "s" then v = tostring(v) end
    return format("%" .. flags .. conv, v)
  end)
  if bad then return nil, format("file_template: unknown field %%(%s)s (known: rev, slug, year, month, day, hour, minute, second, epoch)", bad) end
  return out
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

return {
  summary = "write a new migration file",
  usage = "luamig revision -m MSG [--rev-id ID]",
  max_args = 0,
  options = {
    { short = "-m", long = "--message", arg = "MSG", key = "message", help = "what the migration does" },
    { long = "--rev-id", arg = "ID", key = "rev_id", help = "the revision id instead of a random one" },
  },
  slug = slug,
  render_file_template = render_file_template,
  run = function(ctx)
    local o = ctx.options
    if not o.message or o.message == "" then
      return nil, "revision needs a message: luamig revision -m \"add user table\"", exitcodes.USAGE
    end
    local cfg, cerr = ctx:config()
    if not cfg then return nil, cerr, exitcodes.FAILED end
    local graph, gerr = ctx:graph()
    if not graph then return nil, gerr, exitcodes.FAILED end
    local rev = o.rev_id or core.random_hex(6)
    if rev == "" or rev:find("[@%-%+:%s]") or #rev > 32 then
      return nil, format("--rev-id '%s': a revision id is at most 32 characters without @ - + : or spaces", rev), exitcodes.USAGE
    end
    if graph:get(rev) then
      return nil, format("revision %s already exists in %s", rev, graph:get(rev).shown), exitcodes.FAILED
    end
    local heads = graph:heads()
    if #heads > 1 then
      local hs = {}
      for i, h in ipairs(heads) do hs[i] = h end
      table.sort(hs)
      return nil, format("Multiple heads are present (%s); merge them with `luamig merge heads` first",
        table.concat(hs, ", ")), exitcodes.FAILED
    end
    local now = floor(core.now())
    local tm, tzerr = core.localtime(now, cfg.timezone == "local" and "" or cfg.timezone)
    if not tm then return nil, format("timezone: %s", tzerr), exitcodes.FAILED end
    local off = tm.utcoff
    local sign = off < 0 and "-" or "+"
    off = off < 0 and -off or off
    local create_date = format("%04d-%02d-%02d %02d:%02d:%02d%s%02d:%02d", tm.year, tm.month, tm.day, tm.hour, tm.minute,
      tm.second, sign, off // 3600, (off % 3600) // 60)
    local name, ferr = render_file_template(cfg.file_template, { rev = rev, slug = slug(o.message, cfg.truncate_slug_length),
      year = tm.year, month = tm.month, day = tm.day, hour = tm.hour, minute = tm.minute, second = tm.second, epoch = now })
    if not name then return nil, ferr, exitcodes.FAILED end
    local dir = config_mod.versions_dirs(cfg)[1]
    local file = path.join(dir, name .. ".lua")
    if path.exists(file) then return nil, format("%s already exists", path.display(file)), exitcodes.FAILED end
    local text = templates.migration({ message = o.message, revision = rev, down_revision = heads[1],
      create_date = create_date })
    local ok, werr = path.write_file(file, text)
    if not ok then return nil, format("cannot write %s: %s", path.display(file), werr), exitcodes.FAILED end
    for _, hook in ipairs(cfg.post_write_hooks) do
      local cmd = hook:gsub("REVISION_SCRIPT_FILENAME", function() return shell_quote(file) end)
      local hok, _, code = os.execute(cmd)
      if not hok then
        return nil, format("post_write_hook '%s' failed (exit %s) on %s", hook, tostring(code), path.display(file)), exitcodes.FAILED
      end
    end
    if ctx.json then
      ctx:out(require("luamig.json").encode({ revision = rev, path = file, down_revision = heads[1] }))
    else
      ctx:out(path.display(file))
    end
    return true
  end,
}
