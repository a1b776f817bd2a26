-- The command line: global options, one module per command (luamig.cmd.NAME), and the mapping of every outcome to
-- the exit codes of SPEC 6. A command's run(ctx, args) returns true, or nil, err, code where err is a message or
-- { msg = first line, details = { more lines } }.
local core = require("luamig.core")
local exitcodes = require("luamig.exitcodes")
local url = require("luamig.url")

local format, concat, ipairs, type, tostring, pcall, xpcall, require = string.format, table.concat, ipairs, type,
  tostring, pcall, xpcall, require

local COMMANDS = { "init", "revision", "upgrade", "downgrade", "current", "history", "heads", "branches", "show",
  "stamp", "merge", "check", "verify", "lint", "test" }

local GLOBAL_OPTIONS = {
  { short = "-c", long = "--config", arg = "FILE", key = "config", help = "the config file (default luamig.ini, or $LUAMIG_CONFIG)" },
  { short = "-n", long = "--name", arg = "SECTION", key = "name", help = "the config section (default luamig, then alembic)" },
  { long = "--url", arg = "URL", key = "url", help = "the database URL (before $DATABASE_URL and the config's url)" },
  { short = "-x", arg = "KEY=VALUE", key = "x", multi = true, help = "a value for env.lua (context.x.KEY)" },
  { long = "--schema", arg = "NAME", key = "schema", help = "PostgreSQL: the schema the migrations and version table live in" },
  { long = "--lock", arg = "MODE", key = "lock", help = "the migration lock: auto, session, transaction, lease or none" },
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
  local ctx = require("luamig.context").new({ options = o, quiet = o.quiet, verbose = o.verbose, json = o.json,
    command = parsed.command, out = stdout, info = stderr, warn = function(s) stderr("luamig: warning: " .. s) end })
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

return { main = main, parse = parse, COMMANDS = COMMANDS }
