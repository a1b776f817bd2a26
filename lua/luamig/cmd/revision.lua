-- luamig revision -m MSG: a new migration file, after the current head or the one --head names.
local core = require("luamig.core")
local exitcodes = require("luamig.exitcodes")
local path = require("luamig.path")
local templates = require("luamig.templates")
local config_mod = require("luamig.config")
local runtime = require("luamig.runtime")

local format, floor, concat, sort = string.format, math.floor, table.concat, table.sort

-- slug(message, max): Alembic's: the words of the message joined by "_", lower case, cut at a word boundary.
local function slug(message, max)
  local words = {}
  for w in (message or ""):gmatch("[%w_]+") do words[#words + 1] = w end
  local s = concat(words, "_"):lower()
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

local function check_rev_id(graph, rev)
  if rev == "" or rev:find("[@%-%+:%s]") or #rev > 32 then
    return nil, format("--rev-id '%s': a revision id is at most 32 characters without @ - + : or spaces", rev), exitcodes.USAGE
  end
  if graph:get(rev) then
    return nil, format("revision %s already exists in %s", rev, graph:get(rev).shown), exitcodes.FAILED
  end
  return true
end

-- write(ctx, fields) -> true, or nil, message, code. Writes a new migration file and runs the post_write_hooks.
-- fields: message, rev (optional), down_revision (nil | id | list), branch_labels, depends_on, version_path
local function write(ctx, f)
  local cfg, graph = ctx:config(), ctx:graph()
  local rev = f.rev or core.random_hex(6)
  local ok, err, code = check_rev_id(graph, rev)
  if not ok then return nil, err, code end
  local now = floor(core.now())
  local tm, tzerr = core.localtime(now, cfg.timezone == "local" and "" or cfg.timezone)
  if not tm then return nil, format("timezone: %s", tzerr), exitcodes.FAILED end
  local off = tm.utcoff
  local sign = off < 0 and "-" or "+"
  off = off < 0 and -off or off
  local create_date = format("%04d-%02d-%02d %02d:%02d:%02d%s%02d:%02d", tm.year, tm.month, tm.day, tm.hour, tm.minute,
    tm.second, sign, off // 3600, (off % 3600) // 60)
  local name, ferr = render_file_template(cfg.file_template, { rev = rev, slug = slug(f.message, cfg.truncate_slug_length),
    year = tm.year, month = tm.month, day = tm.day, hour = tm.hour, minute = tm.minute, second = tm.second, epoch = now })
  if not name then return nil, ferr, exitcodes.FAILED end
  local dirs = config_mod.versions_dirs(cfg)
  local dir = dirs[1]
  if f.version_path then
    dir = path.absolute(f.version_path)
    local known = false
    for _, d in ipairs(dirs) do if path.normalize(d) == dir then known = true end end
    if not known then
      local shown = {}
      for i, d in ipairs(dirs) do shown[i] = path.display(d) end
      return nil, format("--version-path %s is not one of the version locations (%s)", f.version_path, concat(shown, ", ")),
        exitcodes.FAILED
    end
  end
  local file = path.join(dir, name .. ".lua")
  if path.exists(file) then return nil, format("%s already exists", path.display(file)), exitcodes.FAILED end
  local text = templates.migration({ message = f.message, revision = rev, down_revision = f.down_revision,
    branch_labels = f.branch_labels, depends_on = f.depends_on, create_date = create_date,
    upgrade_body = f.upgrade_body, downgrade_body = f.downgrade_body })
  local wok, werr = path.write_file(file, text)
  if not wok then return nil, format("cannot write %s: %s", path.display(file), werr), exitcodes.FAILED end
  for _, hook in ipairs(cfg.post_write_hooks) do
    local cmd = hook:gsub("REVISION_SCRIPT_FILENAME", function() return shell_quote(file) end)
    local hok, _, hcode = os.execute(cmd)
    if not hok then
      return nil, format("post_write_hook '%s' failed (exit %s) on %s", hook, tostring(hcode), path.display(file)), exitcodes.FAILED
    end
  end
  if ctx.json then
    local json = require("luamig.json")
    local downs = type(f.down_revision) == "table" and f.down_revision or { f.down_revision }
    ctx:out(json.encode({ revision = rev, path = file, down_revisions = json.array(downs) }))
  else
    ctx:out(path.display(file))
  end
  return true
end

-- The parent of a new revision: the single head, or what --head names (a head unless --splice).
local function parent_of(ctx, graph, o)
  if o.head == nil then
    local heads = graph:heads()
    if #heads > 1 then
      local hs = {}
      for i, h in ipairs(heads) do hs[i] = h end
      sort(hs)
      return nil, format("Multiple heads are present (%s); give --head HEAD (or label@head), or merge them with "
        .. "`luamig merge heads`", concat(hs, ", ")), exitcodes.FAILED
    end
    return heads[1] or false
  end
  if o.head == "base" then return false end
  local r = runtime.new({ graph = graph, cfg = ctx:config() })
  local ids, err = r:resolve_upgrade(o.head, {})
  if not ids then return nil, "--head " .. o.head .. ": " .. err, exitcodes.FAILED end
  if #ids ~= 1 then return nil, format("--head %s names %d revisions; name one", o.head, #ids), exitcodes.FAILED end
  local id = ids[1]
  if graph.children[id] and not o.splice then
    return nil, format("Revision %s is not a head revision; give --splice to start a new branch from it", id), exitcodes.FAILED
  end
  return id
end

return {
  summary = "write a new migration file",
  usage = "luamig revision -m MSG [--autogenerate] [--head H] [--splice] [--branch-label L] [--depends-on R] [--rev-id ID]\n"
    .. "  [--version-path P]",
  max_args = 0,
  options = {
    { short = "-m", long = "--message", arg = "MSG", key = "message", help = "what the migration does" },
    { long = "--autogenerate", key = "autogenerate", help = "write the ops that bring the database to the models" },
    { long = "--head", arg = "H", key = "head", help = "the parent: a head, label@head, or base for a new base" },
    { long = "--splice", key = "splice", help = "allow a parent that is not a head (starts a new branch)" },
    { long = "--branch-label", arg = "L", key = "branch_label", help = "a branch label for the new revision" },
    { long = "--depends-on", arg = "R", key = "depends_on", multi = true, help = "a revision or label it depends on (repeatable)" },
    { long = "--rev-id", arg = "ID", key = "rev_id", help = "the revision id instead of a random one" },
    { long = "--version-path", arg = "P", key = "version_path", help = "which version location to write to" },
  },
  slug = slug,
  render_file_template = render_file_template,
  write = write,
  run = function(ctx)
    local o = ctx.options
    if not o.message or o.message == "" then
      return nil, "revision needs a message: luamig revision -m \"add user table\"", exitcodes.USAGE
    end
    local graph, gerr = ctx:graph()
    if not graph then return nil, gerr, exitcodes.FAILED end
    local parent, perr, pcode = parent_of(ctx, graph, o)
    if parent == nil then return nil, perr, pcode end
    if o.branch_label then
      if graph.labels[o.branch_label] then
        return nil, format("Branch name '%s' is already used by revision %s", o.branch_label,
          graph.labels[o.branch_label].revision), exitcodes.FAILED
      end
      if o.branch_label:find("[@%-%+:%s]") then
        return nil, format("--branch-label '%s' contains one of @ - + : or a space", o.branch_label), exitcodes.USAGE
      end
    end
    local deps
    if o.depends_on then
      deps = {}
      local plan = require("luamig.revision_plan").planner(graph)
      for _, d in ipairs(o.depends_on) do
        local r, derr = plan:ident(d)
        if not r then return nil, "--depends-on " .. d .. ": " .. derr, exitcodes.FAILED end
        deps[#deps + 1] = graph.labels[d] and d or r.revision
      end
    end
    local up_body, down_body
    if o.autogenerate then
      local list, aerr, acode = require("luamig.cmd.check").diffs(ctx)
      if not list then return nil, aerr, acode end
      if #list == 0 then ctx:info("No changes in schema detected.") end
      for _, d in ipairs(list) do ctx:info("Detected " .. d.text) end
      up_body, down_body = require("luamig.autogen").render(list)
      if up_body == "" then up_body = nil end
      if down_body == "" then down_body = nil end
    end
    return write(ctx, { message = o.message, rev = o.rev_id, down_revision = parent or nil,
      branch_labels = o.branch_label and { o.branch_label } or nil, depends_on = deps, version_path = o.version_path,
      upgrade_body = up_body, downgrade_body = down_body })
  end,
}
