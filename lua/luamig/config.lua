-- The project's settings: luamig.ini (or an alembic.ini) read into one plain table, with defaults when there is
-- no file at all, and the database URL chosen by precedence: --url, then DATABASE_URL, then the ini.
local path = require("luamig.path")
local core = require("luamig.core")

local format, lower, tonumber, type = string.format, string.lower, tonumber, type

local DEFAULT_URL = "sqlite:///./app.db"

local BOOLEANS = { ["true"] = true, yes = true, on = true, ["1"] = true,
  ["false"] = false, no = false, off = false, ["0"] = false }

local function split_words(s)
  local out = {}
  if s then
    for w in s:gmatch("[^%s,]+") do out[#out + 1] = w end
  end
  return out
end

local LOCK_MODES = { auto = true, session = true, transaction = true, lease = true, none = true }

-- A settings table with every key present and typed.
local function defaults(here)
  return {
    here = here,
    config_file = nil,
    section = nil,
    script_location = here,
    version_locations = nil,
    file_template = "%(rev)s_%(slug)s",
    timezone = "UTC",
    truncate_slug_length = 40,
    url = nil,
    url_source = nil,
    models = {},
    version_table = "luamig_version",
    transaction_per_migration = true,
    lock_timeout = 60,
    statement_timeout = 0,
    ddl_lock_timeout = 5,
    ddl_lock_retries = 5,
    lint_disable = {},
    lint_postgres_version = nil,
    lock = "auto",
    lease_ttl = 30,
    lease_heartbeat = 5,
    schema = nil,
    post_write_hooks = {},
    naming_convention = nil,
    x = {},
  }
end

-- load(opts) -> settings, or nil, message
-- opts: config (path), name (section), url (flag), x (table of -x values), getenv (for tests), cwd, no_file (read
-- no luamig.ini unless config names one)
local function load(opts)
  opts = opts or {}
  local getenv = opts.getenv or os.getenv
  local cwd = opts.cwd or core.getcwd()
  local file = opts.config or getenv("LUAMIG_CONFIG")
  local explicit = file ~= nil and file ~= ""
  if not explicit then
    file = "luamig.ini"
  end
  local abs = path.absolute(file, cwd)
  local cfg
  if not explicit and opts.no_file then
    cfg = defaults(cwd)
  elseif path.exists(abs) then
    local text, err = path.read_file(abs)
    if not text then return nil, format("cannot read config file %s: %s", file, err) end
    local parsed, perr = require("luamig.ini").parse(text, file)
    if not parsed then return nil, perr end
    local here = path.dirname(abs)
    parsed.defaults.here = here
    local sec = opts.name
    if sec then
      if not parsed:has_section(sec) then
        return nil, format("%s has no [%s] section", file, sec)
      end
    elseif parsed:has_section("luamig") then
      sec = "luamig"
    elseif parsed:has_section("alembic") then
      sec = "alembic"
    else
      return nil, format("%s has no [luamig] section (nor an [alembic] one)", file)
    end
    cfg = defaults(here)
    cfg.config_file, cfg.section = abs, sec
    local function get(k)
      local v, err = parsed:value(sec, k)
      if err then error({ config = true, msg = err }) end
      return v
    end
    local function where(k)
      local ln = parsed:line_of(sec, k) or parsed:line_of("DEFAULT", k)
      return ln and format("%s:%d", file, ln) or file
    end
    local ok, err = pcall(function()
      local sl = get("script_location")
      if sl then
        if sl == "" then error({ config = true, msg = where("script_location") .. ": script_location is empty" }) end
        cfg.script_location = path.absolute(sl, here)
      else
        cfg.script_location = here
      end
      local vl = get("version_locations")
      if vl and vl ~= "" then
        cfg.version_locations = {}
        for _, d in ipairs(split_words(vl)) do
          cfg.version_locations[#cfg.version_locations + 1] = path.absolute(d, here)
        end
      end
      cfg.file_template = get("file_template") or cfg.file_template
      local tz = get("timezone")
      if tz then cfg.timezone = tz end
      local function number(k, min)
        local v = get(k)
        if v == nil or v == "" then return nil end
        local n = tonumber(v)
        if not n or n < min then
          error({ config = true, msg = format("%s: %s must be a number >= %d, got '%s'", where(k), k, min, v) })
        end
        return n
      end
      local function boolean(k)
        local v = get(k)
        if v == nil or v == "" then return nil end
        local b = BOOLEANS[lower(v)]
        if b == nil then
          error({ config = true, msg = format("%s: %s must be true or false, got '%s'", where(k), k, v) })
        end
        return b
      end
      cfg.truncate_slug_length = number("truncate_slug_length", 1) or cfg.truncate_slug_length
      cfg.lock_timeout = number("lock_timeout", 0) or cfg.lock_timeout
      cfg.statement_timeout = number("statement_timeout", 0) or cfg.statement_timeout
      cfg.ddl_lock_timeout = number("ddl_lock_timeout", 0) or cfg.ddl_lock_timeout
      cfg.ddl_lock_retries = number("ddl_lock_retries", 0) or cfg.ddl_lock_retries
      cfg.lint_postgres_version = number("lint_postgres_version", 9) or cfg.lint_postgres_version
      cfg.lease_ttl = number("lease_ttl", 1) or cfg.lease_ttl
      cfg.lease_heartbeat = number("lease_heartbeat", 0) or cfg.lease_heartbeat
      if cfg.lease_heartbeat <= 0 or cfg.lease_heartbeat >= cfg.lease_ttl then
        error({ config = true, msg = format("%s: lease_heartbeat must be more than 0 and less than lease_ttl (%g), "
          .. "got %g", where("lease_heartbeat"), cfg.lease_ttl, cfg.lease_heartbeat) })
      end
      local lock = get("lock")
      if lock and lock ~= "" then
        if not LOCK_MODES[lock] then
          error({ config = true, msg = format("%s: lock must be auto, session, transaction, lease or none, got '%s'",
            where("lock"), lock) })
        end
        cfg.lock = lock
      end
      for rule in (get("lint_disable") or ""):gmatch("[^%s,]+") do cfg.lint_disable[#cfg.lint_disable + 1] = rule end
      local tpm = boolean("transaction_per_migration")
      if tpm ~= nil then cfg.transaction_per_migration = tpm end
      local vt = get("version_table")
      if vt and vt ~= "" then
        if #vt > 63 or not vt:match("^[%a_][%w_]*$") then
          error({ config = true, msg = format("%s: version_table '%s' is not a plain table name", where("version_table"), vt) })
        end
        cfg.version_table = vt
      end
      cfg.models = split_words(get("models"))
      local url = get("url")
      if url == nil or url == "" then url = get("sqlalchemy.url") end
      if url and url ~= "" then
        cfg.url, cfg.url_source = url, where(get("url") and "url" or "sqlalchemy.url")
      end
      local hooks = get("post_write_hooks")
      if hooks and hooks ~= "" then
        for h in hooks:gmatch("[^\n]+") do cfg.post_write_hooks[#cfg.post_write_hooks + 1] = h end
      end
      local nc = get("naming_convention")
      if nc == "none" then
        -- constraints named by the database, as SQLAlchemy does without a convention (indexes keep ix_ names)
        cfg.naming_convention = false
      elseif nc and nc ~= "" then
        cfg.naming_convention = {}
        for k, v in nc:gmatch("(%w+)=(%S+)") do cfg.naming_convention[k] = v end
      end
    end)
    if not ok then
      if type(err) == "table" and err.config then return nil, err.msg end
      error(err, 0)
    end
  elseif explicit then
    return nil, format("config file %s not found", file)
  else
    cfg = defaults(cwd)
  end
  -- The URL: --url, then DATABASE_URL, then the file's, then the built-in default.
  local env_url = getenv("DATABASE_URL")
  if opts.url and opts.url ~= "" then
    cfg.url, cfg.url_source = opts.url, "--url"
  elseif env_url and env_url ~= "" then
    cfg.url, cfg.url_source = env_url, "DATABASE_URL"
  elseif not cfg.url then
    cfg.url, cfg.url_source = DEFAULT_URL, "default"
  end
  cfg.x = opts.x or {}
  if opts.lock ~= nil then
    if not LOCK_MODES[opts.lock] then
      return nil, format("--lock must be auto, session, transaction, lease or none, not '%s'", tostring(opts.lock))
    end
    cfg.lock = opts.lock
  end
  if opts.schema ~= nil then
    if opts.schema == "" or #opts.schema > 63 then
      return nil, format("--schema takes a schema name of 1 to 63 characters, not '%s'", opts.schema)
    end
    cfg.schema = opts.schema
  end
  return cfg
end

-- versions_dirs(cfg) -> the directories that hold migration files
local function versions_dirs(cfg)
  if cfg.version_locations and #cfg.version_locations > 0 then return cfg.version_locations end
  return { path.join(cfg.script_location, "versions") }
end

return { load = load, versions_dirs = versions_dirs, DEFAULT_URL = DEFAULT_URL, split_words = split_words }
