-- The command line: global options, one module per command (luamig.cmd.NAME), and the mapping of every outcome to
-- the exit codes of SPEC 6. A command's run(ctx, args) returns true, or nil, err, code where err is a message or
-- { msg = first line, details = { more lines } }.
local core = require("luamig.core")
local exitcodes = require("luamig.exitcodes")
local url = require("luamig.url")

local format, concat, ipairs, type, tostring, pcall, xpcall, require = string.format, table.concat, ipairs, type,
  tostring, pcall, xpcall, require

local COMMANDS = { "init", "revision", "upgrade", "downgrade", "current", "history", "heads", "branches", "show",
  "stamp", "merge", "check", "verify", "test" }

local GLOBAL_OPTIONS = {
  { short = "-c", long = "--config", arg = "FILE", key = "config", help = "the config file (default luamig.ini, or $LUAMIG_CONFIG)" },
  { short = "-n", long = "--name", arg = "SECTION", key = "name", help = "the config section (default luamig, then alembic)" },
  { long = "--url", arg = "URL", key = "url", help = "the database URL (before $DATABASE_URL and the config's url)" },
  { short = "-x", arg = "KEY=VALUE", key = "x", multi = true, help = "a value for env.lua (context.x.KEY)" },
  { short = "-q", long = "--quiet", key = "quiet", help = "print only results and errors" },
  { short = "-v", long = "--verbose", key = "verbose", help = "more detail, and tracebacks on errors" },
  { long = "--json", key = "json", help = "one JSON document on stdout" },
  { long = "--no-color", key = "no_color", help = "no colour (there is none unless stdout is a terminal)" },
  { long = "--version", key = "version", help = "print the version and exit" },
  { short = "-h", long = "--help", key = "help", help = "this help, or a command's with COMMAND --help" },
}

local function stdout(s) io.stdout:write(s, "\n") end
local function stderr(s) io.stderr:write(s, "\n") end

local function option_line(o)
  local names = {}
  if o.short then names[#names + 1] = o.short end
  if o.long then names[#names + 1] = o.long end
  local s = concat(names, ", ") .. (o.arg and (" " .. o.arg) or "")
  return format("  %-28s %s", s, o.help or "")
end

-- Module names differ from command names where the command's name is special to require ("init").
local MODULES = { init = "init_project" }

local function load_command(name)
  local ok, cmd = pcall(require, "luamig.cmd." .. (MODULES[name] or name))
  if not ok then error(cmd, 0) end
  return cmd
end

local function main_usage()
  local lines = { "usage: luamig [OPTIONS] COMMAND [ARGS]", "", "Commands:" }
  for _, n in ipairs(COMMANDS) do
    lines[#lines + 1] = format("  %-12s %s", n, load_command(n).summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options (before or after the command):"
  for _, o in ipairs(GLOBAL_OPTIONS) do lines[#lines + 1] = option_line(o) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run `luamig COMMAND --help` for a command's own options."
  return concat(lines, "\n")
end

local function command_usage(cmd)
  local lines = { "usage: " .. cmd.usage, "", cmd.summary .. "." }
  if cmd.description then lines[#lines + 1] = cmd.description end
  if cmd.options and #cmd.options > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Options:"
    for _, o in ipairs(cmd.options) do lines[#lines + 1] = option_line(o) end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Global options: -c FILE, -n SECTION, --url URL, -x KEY=VALUE, -q, -v, --json, --no-color, -h"
  return concat(lines, "\n")
end

local function find_option(list, a)
  for _, o in ipairs(list or {}) do
    if a == o.long or a == o.short then return o end
  end
end

-- parse(argv) -> { command, options = {}, args = {} }, or nil, message (a usage error)
local function parse(argv)
  local res = { options = { x = {} }, args = {} }
  local cmd
  local i, n = 1, #argv
  local only_args = false
  while i <= n do
    local a = argv[i]
    if only_args or a == "-" or not a:match("^%-") or a:match("^[+-]%d+$") then
      if not res.command and not only_args then
        res.command = a
        local known = false
        for _, c in ipairs(COMMANDS) do if c == a then known = true end end
        if not known then return nil, format("unknown command '%s' (commands: %s)", a, concat(COMMANDS, ", ")) end
        cmd = load_command(a)
        res.cmd = cmd
      else
        res.args[#res.args + 1] = a
      end
    elseif a == "--" then
      only_args = true
    else
      local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local o = find_option(cmd and cmd.options, name) or find_option(GLOBAL_OPTIONS, name)
      if not o then
        if cmd then
          return nil, format("unknown option '%s' for '%s' (see luamig %s --help)", name, res.command, res.command)
        end
        return nil, format("unknown option '%s' (see luamig --help)", name)
      end
      local value = true
      if o.arg then
        if inline then
          value = inline
        else
          i = i + 1
          value = argv[i]
          if value == nil then return nil, format("option %s needs a value (%s)", name, o.arg) end
        end
      elseif inline then
        return nil, format("option %s takes no value", name)
      end
      if o.multi then
        local list = res.options[o.key] or {}
        list[#list + 1] = value
        res.options[o.key] = list
      else
        res.options[o.key] = value
      end
    end
    i = i + 1
  end
  -- -x KEY=VALUE pairs become a table
  local x = {}
  for _, kv in ipairs(res.options.x) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then return nil, format("-x takes KEY=VALUE, got '%s'", kv) end
    x[k] = v
  end
  res.options.x = x
  return res
end

-- The context commands work with: printing, and the config, scripts and database loaded once, on demand.
local Ctx = {}
Ctx.__index = Ctx

function Ctx:out(s) stdout(s) end
function Ctx:info(s) if not self.quiet and not self.json then stderr(s) end end
function Ctx:warn(s) stderr("luamig: warning: " .. s) end

-- config(no_file) -> settings, or nil, message. no_file: without -c, read no luamig.ini (the Lua API's open{url=})
function Ctx:config(no_file)
  if self._cfg then return self._cfg end
  local cfg_mod = require("luamig.config")
  local cfg, err = cfg_mod.load({ config = self.options.config, name = self.options.name, url = self.options.url,
    x = self.options.x, no_file = no_file })
  if not cfg then return nil, err end
  -- The project directory comes first on package.path so env.lua, models and helpers can be required.
  package.path = format("%s/?.lua;%s/?/init.lua;%s", cfg.here, cfg.here, package.path)
  self._cfg = cfg
  return cfg
end

-- graph() -> revision graph, or nil, message (loads env.lua, then every migration file)
function Ctx:graph()
  if self._graph then return self._graph end
  local cfg, err = self:config()
  if not cfg then return nil, err end
  local script_dir = require("luamig.script_dir")
  local config_mod = require("luamig.config")
  local path = require("luamig.path")
  local dirs = config_mod.versions_dirs(cfg)
  for _, d in ipairs(dirs) do
    if not path.isdir(d) then
      local hint = cfg.config_file and "" or " (no luamig.ini here: run `luamig init migrations` to start a project)"
      return nil, format("no versions directory at %s%s", path.display(d), hint)
    end
  end
  local env, eerr = script_dir.load_env(cfg.script_location, { config = cfg, x = cfg.x, url = url.mask(cfg.url),
    tag = self.options.tag })
  if not env then return nil, eerr end
  self.env = env
  -- the revision fields only: a file's code is compiled when a command runs it (Runner:prepare)
  local revs, lerr = script_dir.load_all(dirs, true)
  if not revs then return nil, lerr end
  local graph, gerr = require("luamig.revision_graph").new(revs)
  if not graph then return nil, gerr end
  self._graph = graph
  return graph
end

-- connect() -> { conn, dialect, url }, or nil, message
function Ctx:connect()
  if self._db then return self._db end
  local cfg, err = self:config()
  if not cfg then return nil, err end
  local db, derr = require("luamig.db").connect(cfg)
  if not db then return nil, derr end
  self._db = db
  return db
end

-- db_heads() -> the version rows of the database and the connection info, or nil, message
function Ctx:db_heads()
  local db, err = self:connect()
  if not db then return nil, err end
  local heads, herr = require("luamig.version_table").read(db.conn, db.dialect, self._cfg.version_table)
  if not heads then return nil, format("cannot read the version table of %s: %s", db.url, herr) end
  return heads, db
end

-- runner() -> a migration runner over the graph and the database, holding the migration lock; or nil, message
function Ctx:runner()
  local graph, err = self:graph()
  if not graph then return nil, err end
  local db, derr = self:connect()
  if not db then return nil, derr end
  local release, lerr = require("luamig.lock").acquire(db, self._cfg, function(line) self:info(line) end)
  if not release then return nil, lerr end
  self._release = release
  local runtime = require("luamig.runtime")
  return runtime.new({ conn = db.conn, dialect = db.dialect, graph = graph, cfg = self._cfg, verbose = self.verbose,
    progress = function(line) self:info(line) end, warn = function(line) self:warn(line) end,
    locked = db.dialect.name == "postgresql" })
end

-- release_lock(): gives the migration lock back, if held; a lock that was not held any more is said as a warning
function Ctx:release_lock()
  local release = self._release
  if not release then return end
  self._release = nil
  local ok, err = release()
  if not ok then self:warn(err) end
end

function Ctx:close()
  self:release_lock()
  if self._db then
    require("luamig.db").close(self._db)
    self._db = nil
  end
end

local function report(err, verbose)
  if type(err) == "table" then
    stderr("luamig: " .. url.mask(tostring(err.msg)))
    for _, d in ipairs(err.details or {}) do
      if verbose or not d:match("^stack traceback") then stderr(url.mask(d)) end
    end
  else
    stderr("luamig: " .. url.mask(tostring(err)))
  end
end

-- main(argv) -> exit code. argv[0] is the program name.
local function main(argv)
  local parsed, perr = parse(argv)
  if not parsed then
    stderr("luamig: " .. perr)
    return exitcodes.USAGE
  end
  local o = parsed.options
  if o.version then
    stdout("luamig " .. core.version .. " (Lua " .. _VERSION:match("%d.*") .. ", SQLite " .. core.sqlite_version() .. ")")
    return exitcodes.OK
  end
  if not parsed.command then
    if o.help then
      stdout(main_usage())
      return exitcodes.OK
    end
    stderr(main_usage())
    return exitcodes.USAGE
  end
  local cmd = parsed.cmd
  if o.help then
    stdout(command_usage(cmd))
    return exitcodes.OK
  end
  local nargs = #parsed.args
  if nargs < (cmd.min_args or 0) or (cmd.max_args and nargs > cmd.max_args) then
    stderr(format("luamig: %s: expected %s, got %d argument(s)", parsed.command, cmd.args_help or "no arguments", nargs))
    stderr("usage: " .. cmd.usage)
    return exitcodes.USAGE
  end
  local ctx = setmetatable({ options = o, quiet = o.quiet, verbose = o.verbose, json = o.json, command = parsed.command }, Ctx)
  local ok, res, err, code = xpcall(cmd.run, debug.traceback, ctx, parsed.args)
  ctx:close()
  if not ok then
    -- an error escaping a command is a bug in luamig, not bad input: say so, with the traceback
    stderr("luamig: internal error: " .. url.mask(tostring(res)))
    return exitcodes.FAILED
  end
  if res then return type(res) == "number" and res or exitcodes.OK end
  report(err, ctx.verbose)
  return code or exitcodes.FAILED
end

return { main = main, parse = parse, COMMANDS = COMMANDS, Ctx = Ctx }
