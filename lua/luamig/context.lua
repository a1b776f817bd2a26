-- The environment context (Alembic's EnvironmentContext): the config, the env.lua environment, the revision graph,
-- the connection and the migration lock of one project, each loaded once, on demand, behind public accessors. The
-- command line (luamig.cli) and the Lua API (require "luamig") both work through it.
--
-- It is the one owner of package.path: the project directory comes first on it while the context is open (so that
-- env.lua, models and helpers can be required), and close() puts it back as it was.
local url = require("luamig.url")

local format, ipairs, pairs, setmetatable, pcall = string.format, ipairs, pairs, setmetatable, pcall

local Context = {}
Context.__index = Context

local function noop() end

-- new(opts) -> context
-- opts: options (config, name, url, x, tag: as the command line's global options), no_file (read no luamig.ini
-- without opts.options.config), out / info / warn (function(line): results, progress and warnings), quiet,
-- verbose, json
local function new(opts)
  return setmetatable({ options = opts.options or { x = {} }, no_file = opts.no_file, say_out = opts.out or noop,
    say_info = opts.info or noop, say_warn = opts.warn or noop, quiet = opts.quiet, verbose = opts.verbose,
    json = opts.json, command = opts.command,
    cfg_ = nil, graph_ = nil, db_ = nil, env_ = nil, release_ = nil, saved_path = nil }, Context)
end

function Context:out(s) self.say_out(s) end
function Context:info(s) if not self.quiet and not self.json then self.say_info(s) end end
function Context:warn(s) self.say_warn(s) end

-- config() -> settings, or nil, message
function Context:config()
  if self.cfg_ then return self.cfg_ end
  local o = self.options
  local cfg, err = require("luamig.config").load({ config = o.config, name = o.name, url = o.url, x = o.x,
    no_file = self.no_file, lock = o.lock, schema = o.schema })
  if not cfg then return nil, err end
  if not self.saved_path then self.saved_path = package.path end
  package.path = format("%s/?.lua;%s/?/init.lua;%s", cfg.here, cfg.here, self.saved_path)
  self.cfg_ = cfg
  return cfg
end

-- env() -> what env.lua returned (target_metadata, include_object, ...), once graph() has loaded it; or nil
function Context:env() return self.env_ end

-- graph() -> revision graph, or nil, message (loads env.lua, then every migration file's revision fields; a file's
-- code is compiled when a run needs it, Runner:prepare)
function Context:graph()
  if self.graph_ then return self.graph_ end
  local cfg, err = self:config()
  if not cfg then return nil, err end
  local script_dir = require("luamig.script_dir")
  local path = require("luamig.path")
  local dirs = require("luamig.config").versions_dirs(cfg)
  for _, d in ipairs(dirs) do
    if not path.isdir(d) then
      local hint = cfg.config_file and "" or " (no luamig.ini here: run `luamig init migrations` to start a project)"
      return nil, format("no versions directory at %s%s", path.display(d), hint)
    end
  end
  local env, eerr = script_dir.load_env(cfg.script_location, { config = cfg, x = cfg.x, url = url.mask(cfg.url),
    tag = self.options.tag })
  if not env then return nil, eerr end
  self.env_ = env
  local revs, lerr = script_dir.load_all(dirs, true)
  if not revs then return nil, lerr end
  local graph, gerr = require("luamig.revision_graph").new(revs)
  if not graph then return nil, gerr end
  self.graph_ = graph
  return graph
end

-- connect() -> { conn, dialect, url, path? }, or nil, message
function Context:connect()
  if self.db_ then return self.db_ end
  local cfg, err = self:config()
  if not cfg then return nil, err end
  local db, derr = require("luamig.db").connect(cfg)
  if not db then return nil, derr end
  self.db_ = db
  return db
end

-- connection() -> the open connection's { conn, dialect, url }, or nil when none is open
function Context:connection() return self.db_ end

-- version_rows() -> the version rows of the database and the connection, or nil, message
function Context:version_rows()
  local db, err = self:connect()
  if not db then return nil, err end
  local heads, herr = require("luamig.version_table").read(db.conn, db.dialect, self.cfg_.version_table)
  if not heads then return nil, format("cannot read the version table of %s: %s", db.url, herr) end
  return heads, db
end

-- runner() -> a migration runner over the graph and the live database, holding the migration lock (where the
-- dialect has one) until release_lock; or nil, message
function Context:runner()
  local graph, err = self:graph()
  if not graph then return nil, err end
  local db, derr = self:connect()
  if not db then return nil, derr end
  local cfg = self.cfg_
  -- a server that cannot take writes (a standby) is refused before any lock is taken
  local wok, werr = db.dialect:writable(db)
  if not wok then return nil, werr end
  local mode, why = db.dialect:lock_mode(db, cfg)
  db.lock_mode = mode
  if self.verbose then self:info(format("lock: %s (%s)", mode, why)) end
  local lock, lerr = db.dialect:acquire_lock(db, cfg, function(line) self:info(line) end)
  if not lock then return nil, lerr end
  self.release_ = lock.release
  return require("luamig.runtime").new({ x = require("luamig.executor").live(db.conn, db.dialect, cfg, lock),
    dialect = db.dialect, graph = graph, cfg = cfg, verbose = self.verbose, locked = lock.locked,
    engine = db.server and db.server.engine,
    progress = function(line) self:info(line) end, warn = function(line) self:warn(line) end })
end

-- writer(emit, from_spec) -> a runner writing the SQL of a run through emit(text), the database assumed at
-- from_spec (nil or "base": an empty database, whose version tables are created first); or nil, message
function Context:writer(emit, from_spec)
  local graph, err = self:graph()
  if not graph then return nil, err end
  local cfg = self.cfg_
  local u, uerr = url.parse(cfg.url)
  if not u then return nil, uerr end
  local dialect, derr = require("luamig.dialect").get(u.dialect)
  if not dialect then return nil, derr end
  local heads = {}
  if from_spec ~= nil and from_spec ~= "" and from_spec ~= "base" then
    local herr
    heads, herr = self:resolver():resolve_upgrade(from_spec, {})
    if not heads then return nil, format("--sql %s:...: %s", from_spec, herr) end
  end
  -- (locked: the heads are the writer's own, no other runner moves them; no step re-reads them)
  return require("luamig.runtime").new({ x = require("luamig.executor").writer(emit, dialect, cfg, heads),
    dialect = dialect, graph = graph, cfg = cfg, verbose = self.verbose, locked = true,
    progress = function(line) self:info(line) end })
end

-- resolver() -> a runner that only resolves targets over the graph (no database); or nil, message
function Context:resolver()
  local graph, err = self:graph()
  if not graph then return nil, err end
  return require("luamig.runtime").new({ graph = graph, cfg = self.cfg_ })
end

-- release_lock(): gives the migration lock back, if held; a lock that was not held any more is said as a warning
function Context:release_lock()
  local release = self.release_
  if not release then return end
  self.release_ = nil
  local db = self.db_
  if db and db.conn.lost and db.conn:lost(nil) then
    -- the lock went with the session (a lease runs out by itself)
    release(true)
    return
  end
  local ok, err = release()
  if not ok then self:warn(err) end
end

-- for_target(t) -> a context for one target of a fleet (t.url: another database; t.schema: a schema), sharing
-- this one's settings, env.lua and revision graph; its progress lines carry the target's name
function Context:for_target(t)
  local cfg = self.cfg_
  local c = setmetatable({}, Context)
  for k, v in pairs(self) do c[k] = v end
  local tcfg = {}
  for k, v in pairs(cfg) do tcfg[k] = v end
  if t.url then tcfg.url, tcfg.url_source = t.url, "--targets" end
  if t.schema then tcfg.schema = t.schema end
  local name = t.schema and ("schema=" .. t.schema) or (t.url and url.mask(t.url))
  c.cfg_, c.db_, c.release_, c.saved_path = tcfg, nil, nil, nil
  if name then
    local info, warn = self.say_info, self.say_warn
    c.say_info = function(line) if self.verbose then info(name .. ": " .. line) end end
    c.say_warn = function(line) warn(name .. ": " .. line) end
  end
  return c
end

-- dialect_name() -> the dialect of the configured URL ("sqlite", "postgresql"), or nil when it does not parse
function Context:dialect_name()
  local cfg = self.cfg_
  local u = cfg and url.parse(cfg.url)
  return u and u.dialect
end

-- adopt_connection(db) / disown_connection(): a connection the context uses but does not close (a fleet worker's)
function Context:adopt_connection(db) self.db_ = db end
function Context:disown_connection() self.db_ = nil end

-- drop_connection(): after the connection was lost: the lock's resources are let go without asking the server
-- (it went with the session, or its lease runs out), and the connection is closed, so that connect() makes a new one
function Context:drop_connection()
  local release = self.release_
  self.release_ = nil
  if release then pcall(release, true) end
  if self.db_ then
    pcall(self.db_.conn.close, self.db_.conn)
    self.db_ = nil
  end
end

-- close(): the lock, the connection, and package.path as it was before
function Context:close()
  self:release_lock()
  if self.db_ then
    require("luamig.db").close(self.db_)
    self.db_ = nil
  end
  if self.saved_path then
    package.path = self.saved_path
    self.saved_path = nil
  end
end

return { new = new, Context = Context }
