-- Shared by the specs: temp dirs, files, running the built luamig binary, and reading SQLite databases back
-- with the sqlite3 shell (an independent reader, not luamig's own driver).
local M = {}

local function here()
  local env = os.getenv("LUAMIG_SOURCE_DIR")
  if env and env ~= "" then return env end
  local dir = debug.getinfo(1, "S").source:sub(2):match("^(.*)/tests/support%.lua$") or "."
  local p = assert(io.popen("cd '" .. dir:gsub("'", "'\\''") .. "' && pwd -P"))
  local abs = p:read("l")
  p:close()
  return abs
end

M.root = here()
M.bin = os.getenv("LUAMIG_BIN") or (M.root .. "/build/luamig")

function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Under scripts/test --sanitize the busted process has the sanitizer runtimes preloaded; the tools the specs run
-- (sqlite3, psql, sh) must not inherit that (psql then hangs at exit).
local CLEAN = "env -u LD_PRELOAD -u ASAN_OPTIONS "

-- clean(cmd) -> cmd run without the sanitizer preload
function M.clean(cmd)
  return CLEAN .. "sh -c " .. M.q(cmd)
end

function M.sh(cmd)
  local p = assert(io.popen(M.clean(cmd) .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. M.q(p)))
  return p
end

-- copy_versions(from, to): the migration files (*.lua) of the folder from into the folder to, made first. Only the
-- files: a luamig run in the source folder (a C test, another spec) may be writing its caches there meanwhile.
function M.copy_versions(from, to)
  assert(os.execute(string.format("mkdir -p %s && cp %s/*.lua %s/", M.q(to), M.q(from), M.q(to))))
end

-- models_project(models) -> a temp project dir for autogenerate: luamig.ini (models = myapp.models, the SQLite file
-- ./app.db), an empty versions/, and myapp/models.lua holding models
local MODELS_INI = "[luamig]\nscript_location = .\nfile_template = %%(rev)s\nmodels = myapp.models\n"
  .. "url = sqlite:///./app.db\n"

function M.models_project(models)
  local dir = M.tmpdir()
  M.write(dir .. "/luamig.ini", MODELS_INI)
  assert(os.execute("mkdir -p " .. M.q(dir .. "/versions") .. " " .. M.q(dir .. "/myapp")))
  M.write(dir .. "/myapp/models.lua", models)
  return dir
end

function M.rmrf(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf " .. M.q(p)) end
end

function M.write(path, text)
  os.execute("mkdir -p " .. M.q(path:match("^(.*)/[^/]*$") or "."))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- run(args, opts) -> { code, out, err, first } running the luamig binary; args is a shell-quoted string.
-- opts.cwd (default: a fresh temp dir), opts.env { NAME = value } (DATABASE_URL and LUAMIG_CONFIG cleared unless given),
-- opts.as: a user to run it as (through runuser; the tests must run as root for that)
function M.run(args, opts)
  opts = opts or {}
  local cwd = opts.cwd or M.tmpdir()
  local outf, errf = os.tmpname(), os.tmpname()
  local env = { "env -u DATABASE_URL -u LUAMIG_CONFIG -u LD_PRELOAD -u ASAN_OPTIONS" }
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. M.q(v) end
  local as = opts.as and ("runuser -u " .. M.q(opts.as) .. " -- ") or ""
  local cmd = string.format("cd %s && %s%s %s %s </dev/null >%s 2>%s", M.q(cwd), as, table.concat(env, " "),
    M.q(opts.bin or M.bin), args, M.q(outf), M.q(errf))
  local ok, _, code = os.execute(cmd)
  local r = { code = ok and 0 or code, out = M.read(outf) or "", err = M.read(errf) or "" }
  os.remove(outf)
  os.remove(errf)
  r.first = r.err:match("^([^\n]*)")
  -- the error line: the first of stderr that starts with "luamig:" (progress lines of steps that did apply come before it)
  r.errline = r.err:match("^(luamig:[^\n]*)") or r.err:match("\n(luamig:[^\n]*)")
  r.lines = {}
  for l in r.out:gmatch("[^\n]+") do r.lines[#r.lines + 1] = l end
  return r
end

-- sql(db, query) -> the sqlite3 shell's output, trimmed (rows separated by \n, columns by |)
function M.sql(db, query)
  local code, out = M.sh("sqlite3 -batch " .. M.q(db) .. " " .. M.q(query))
  assert(code == 0, "sqlite3 failed: " .. out)
  return (out:gsub("%s+$", ""))
end

-- dump(db) -> the full .dump text: schema, data and version rows
function M.dump(db)
  local code, out = M.sh("sqlite3 -batch " .. M.q(db) .. " .dump")
  assert(code == 0, out)
  return out
end

-- tables(db) -> sorted list of table names (sqlite_ internals excluded)
function M.tables(db)
  local out = M.sql(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
  local t = {}
  for n in out:gmatch("[^\n]+") do t[#t + 1] = n end
  return t
end

-- columns(db, table) -> list of "name type notnull dflt pk" strings from PRAGMA table_info
function M.columns(db, tbl)
  local out = M.sql(db, "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || coalesce(dflt_value, '-') || ' ' || pk "
    .. "FROM pragma_table_info('" .. tbl .. "') ORDER BY cid")
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

function M.indexes(db, tbl)
  local out = M.sql(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '" .. tbl
    .. "' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name")
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- versions(db [, table]) -> the version rows, sorted, joined by ","
function M.versions(db, tbl)
  return (M.sql(db, "SELECT version_num FROM " .. (tbl or "luamig_version") .. " ORDER BY version_num"):gsub("\n", ","))
end

-- migration(dir, fields) writes versions/<rev>_<slug>.lua; fields: rev, down (string|list|nil), up, down_body, msg,
-- transactional (false for a migration that runs outside a transaction)
function M.migration(dir, f)
  local down
  if f.down == nil then down = "nil"
  elseif type(f.down) == "table" then
    local parts = {}
    for i, d in ipairs(f.down) do parts[i] = string.format("%q", d) end
    down = "{ " .. table.concat(parts, ", ") .. " }"
  else down = string.format("%q", f.down) end
  local text = table.concat({
    "--- " .. (f.msg or ("revision " .. f.rev)),
    'local t = require("luamig.types")',
    "local M = {",
    string.format("  revision = %q,", f.rev),
    "  down_revision = " .. down .. "," .. (f.transactional == false and " transactional = false," or ""),
    "}",
    "function M.upgrade(op)",
    f.up or "",
    "end",
    "function M.downgrade(op)",
    f.down_body or "",
    "end",
    "return M",
    "",
  }, "\n")
  local path = dir .. "/" .. (f.file or (f.rev .. "_" .. (f.msg or "rev"):gsub("%W+", "_") .. ".lua"))
  M.write(path, text)
  return path
end

-- chain(dir, ups) writes a line of migrations into dir/versions, one per entry of ups (each its upgrade's body):
-- revisions aaab00000001, aaac00000002, ... each after the one before
function M.chain(dir, ups)
  local prev
  for i, up in ipairs(ups) do
    local rev = string.format("%04x%08d", 0xaaaa + i, i)
    M.migration(dir .. "/versions", { rev = rev, down = prev, msg = "step " .. i, up = up })
    prev = rev
  end
end

-- PostgreSQL: the throw-away server scripts/test starts (LUAMIG_TEST_PG_URL names it, on a unix socket).
local pg_counter = 0

local function pg_base()
  local u = os.getenv("LUAMIG_TEST_PG_URL")
  assert(u and u ~= "", "LUAMIG_TEST_PG_URL is not set: run the PostgreSQL specs through ./scripts/test")
  local host = u:match("[?&]host=([^&]+)")
  local user = u:match("[?&]user=([^&]+)") or "postgres"
  return host, user
end

-- psql(db, sql) -> output of psql -Atc (rows by \n, columns by |), trimmed; errors fail the test
function M.psql(db, sql)
  local host, user = pg_base()
  local code, out = M.sh(string.format("psql -X -q -h %s -U %s -d %s -v ON_ERROR_STOP=1 -Atc %s", M.q(host), M.q(user),
    M.q(db), M.q(sql)))
  assert(code == 0, "psql failed: " .. out)
  return (out:gsub("%s+$", ""))
end

-- pg_database() -> name, url of a new empty database on the test server
function M.pg_database()
  local host, user = pg_base()
  pg_counter = pg_counter + 1
  local name = string.format("luamig_t%d_%d", require("luamig.core").getpid(), pg_counter)
  M.psql("postgres", "DROP DATABASE IF EXISTS " .. name)
  M.psql("postgres", "CREATE DATABASE " .. name)
  return name, string.format("postgresql:///%s?host=%s&user=%s", name, host, user)
end

function M.pg_drop(name)
  M.psql("postgres", "DROP DATABASE IF EXISTS " .. name .. " WITH (FORCE)")
end

-- pg_url_via(env, db) -> the URL of database db through the server named by env (LUAMIG_TEST_PGBOUNCER_URL:
-- PgBouncer in transaction mode in front of the test server; LUAMIG_TEST_PG_STANDBY_URL: its streaming standby)
function M.pg_url_via(env, db)
  local u = os.getenv(env)
  assert(u and u ~= "", env .. " is not set: run the PostgreSQL specs through ./scripts/test")
  return (u:gsub("^postgresql:///[^?]*", "postgresql:///" .. db))
end

-- wait_until(what, fn, seconds): polls fn() every 50 ms until it answers true; fails naming what after seconds
-- (default 180; a message from fail(), when given, is added)
function M.wait_until(what, fn, seconds, fail)
  local core = require("luamig.core")
  local deadline = core.clock() + (seconds or 180)
  repeat
    if fn() then return end
    core.sleep(0.05)
  until core.clock() > deadline
  error(string.format("waited %d s for %s%s", seconds or 180, what, fail and ("; " .. fail()) or ""))
end

-- pg_caught_up(primary, standby): waits until a standby has replayed all its primary has written so far (each a
-- psql(sql) function of its postgres database); a timeout names the primary's view of its standbys
function M.pg_caught_up(primary, standby)
  local lsn = primary("SELECT pg_current_wal_lsn()")
  M.wait_until("the standby to replay up to " .. lsn, function()
    return standby("SELECT pg_last_wal_replay_lsn() >= '" .. lsn .. "'::pg_lsn") == "t"
  end, 180, function()
    return "the primary's replication: " .. primary("SELECT coalesce(string_agg(state || ' at ' || replay_lsn, ', '), "
      .. "'no standby connected') FROM pg_stat_replication")
  end)
end

-- pg_server() -> a PostgreSQL of the calling spec's own (for specs that stop, restart or fail over a server while
-- others use the shared one): { dir, url (its postgres database), psql(sql), restart(), stop(), standby() }.
-- srv:standby() makes a streaming standby of it through a replication slot, with the same fields and also
-- caught_up() (waits until it has replayed all the primary has written), detach() (stops streaming: what the
-- primary commits from then on never reaches it) and promote(); stop() stops it too.
local PGBIN = "/usr/lib/postgresql/15/bin"

local function server_at(dir, as)
  local srv = { dir = dir, url = string.format("postgresql:///postgres?host=%s&user=postgres", dir) }
  local opts = string.format("-o \"-k %s -c listen_addresses='' -c fsync=off\"", dir)
  local function ctl(args)
    return os.execute(M.clean(string.format("%s%s/pg_ctl -D %s/data -l %s/server.log -w -t 120 %s >/dev/null 2>&1", as,
      PGBIN, dir, dir, args)))
  end
  function srv.psql(sql)
    local code, out = M.sh(string.format("psql -X -q -h %s -U postgres -d postgres -v ON_ERROR_STOP=1 -Atc %s",
      M.q(dir), M.q(sql)))
    assert(code == 0, "psql failed: " .. out)
    return (out:gsub("%s+$", ""))
  end
  function srv.start() assert(ctl(opts .. " start"), "the server did not start: " .. (M.read(dir .. "/server.log") or "")) end
  function srv.restart() assert(ctl("-m fast " .. opts .. " restart"), "the server did not restart") end
  function srv.kill() ctl("-m immediate stop") end
  return srv
end

function M.pg_server()
  local dir = M.tmpdir()
  local as = ""
  local _, uid = M.sh("id -u")
  if uid:match("^0") then
    os.execute("chown postgres:postgres " .. M.q(dir))
    as = "runuser -u postgres -- "
  end
  assert(os.execute(M.clean(string.format("%s%s/initdb -D %s/data -A trust -U postgres --no-sync >%s/initdb.log 2>&1",
    as, PGBIN, dir, dir))), "initdb failed: " .. (M.read(dir .. "/initdb.log") or ""))
  local srv = server_at(dir, as)
  srv.start()
  local standbys = {}
  function srv.standby()
    local sdir = M.tmpdir()
    if as ~= "" then os.execute("chown postgres:postgres " .. M.q(sdir)) end
    local slot = "s" .. (#standbys + 1)
    assert(os.execute(M.clean(string.format("%s%s/pg_basebackup -h %s -U postgres -D %s/data -R -X stream -C -S %s "
      .. ">%s/basebackup.log 2>&1", as, PGBIN, M.q(dir), sdir, slot, sdir))),
      "pg_basebackup failed: " .. (M.read(sdir .. "/basebackup.log") or ""))
    local sb = server_at(sdir, as)
    sb.start()
    standbys[#standbys + 1] = sb
    function sb.caught_up() M.pg_caught_up(srv.psql, sb.psql) end
    function sb.detach()
      local f = assert(io.open(sdir .. "/data/postgresql.auto.conf", "a"))
      f:write("primary_conninfo = ''\n")
      f:close()
      sb.psql("SELECT pg_reload_conf()")
      M.wait_until("the standby to stop streaming", function()
        return sb.psql("SELECT count(*) FROM pg_stat_wal_receiver") == "0"
      end)
    end
    function sb.promote()
      assert(os.execute(M.clean(string.format("%s%s/pg_ctl -D %s/data -w -t 120 promote >/dev/null 2>&1", as, PGBIN,
        sdir))), "the standby was not promoted")
    end
    return sb
  end
  function srv.stop()
    for _, sb in ipairs(standbys) do
      sb.kill()
      M.rmrf(sb.dir)
    end
    srv.kill()
    M.rmrf(dir)
  end
  return srv
end

-- counted(dir, n, opts) writes n migrations into dir/versions that count themselves: each inserts its revision
-- into the table applied (made by the first) in its own transaction, so a migration applied twice shows as two
-- rows. opts.sleep: seconds each sleeps on the server (pg_sleep) before counting; opts.ddl (default true): each
-- also creates table t_<i>; opts.extra[i]: a line of Lua added to migration i's upgrade, before it counts itself.
-- Returns the revisions in order.
function M.counted(dir, n, opts)
  opts = opts or {}
  local revs, prev = {}, nil
  for i = 1, n do
    local rev = string.format("c%03d%08d", i, i)
    local up = {}
    if i == 1 then up[#up + 1] = '  op.execute("CREATE TABLE IF NOT EXISTS applied (rev TEXT NOT NULL)")' end
    if opts.sleep then up[#up + 1] = string.format('  op.execute("SELECT pg_sleep(%g)")', opts.sleep) end
    if opts.ddl ~= false then up[#up + 1] = string.format('  op.create_table("t_%d", { { "id", t.integer } })', i) end
    if opts.extra and opts.extra[i] then up[#up + 1] = "  " .. opts.extra[i] end
    up[#up + 1] = string.format([[  op.execute("INSERT INTO applied (rev) VALUES ('%s')")]], rev)
    M.migration(dir .. "/versions", { rev = rev, down = prev, msg = "count " .. i, up = table.concat(up, "\n"),
      down_body = opts.ddl ~= false and string.format('  op.drop_table("t_%d")', i) or "" })
    revs[i], prev = rev, rev
  end
  return revs
end

-- applied_counts(db) -> how many rows applied holds, and how many distinct revisions
function M.applied_counts(db)
  local out = M.psql(db, "SELECT count(*) || ' ' || count(DISTINCT rev) FROM applied")
  local a, b = out:match("^(%d+) (%d+)$")
  return tonumber(a), tonumber(b)
end

-- spawn(cmd, dir, name) -> the pid of luamig (or whatever cmd execs) started in the background in dir; its output
-- goes to dir/name.out, its exit code to dir/name.rc when it ends
function M.spawn(cmd, dir, name)
  local pidf = dir .. "/" .. name .. ".pid"
  os.remove(pidf)
  assert(os.execute(M.clean(string.format("cd %s && ( sh -c 'echo $$ > %s; exec %s' > %s 2>&1; echo $? > %s ) "
    .. "</dev/null >/dev/null 2>&1 &", M.q(dir), pidf, cmd:gsub("'", "'\\''"), M.q(dir .. "/" .. name .. ".out"),
    M.q(dir .. "/" .. name .. ".rc")))))
  for _ = 1, 3000 do
    local p = M.read(pidf)
    if p and p:match("^%d+") then return tonumber(p:match("^%d+")) end
    require("luamig.core").sleep(0.01)
  end
  error("the background command did not start: " .. cmd)
end

-- finished(dir, name, seconds) -> the exit code of a spawned command, waiting for it up to seconds (nil: still running)
function M.finished(dir, name, seconds)
  local core = require("luamig.core")
  local deadline = core.clock() + (seconds or 0)
  repeat
    local rc = M.read(dir .. "/" .. name .. ".rc")
    if rc and rc:match("^%d+") then return tonumber(rc:match("^%d+")) end
    core.sleep(0.05)
  until core.clock() > deadline
  return nil
end

-- pg_schema(db) -> columns, indexes and constraints of the public schema as text, for before/after comparisons
function M.pg_schema(db)
  return M.psql(db, "SELECT string_agg(x, E'\n' ORDER BY x) FROM ("
    .. "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '-') AS x "
    .. "FROM information_schema.columns WHERE table_schema = 'public' UNION ALL "
    .. "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' UNION ALL "
    .. "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
    .. "WHERE connamespace = 'public'::regnamespace) s")
end

function M.pg_versions(db, tbl)
  return (M.psql(db, "SELECT version_num FROM " .. (tbl or "luamig_version") .. " ORDER BY version_num"):gsub("\n", ","))
end

-- targets() -> the databases a spec runs on alike: SQLite files and databases on the PostgreSQL test server. Each has
-- fresh(dir) -> url, handle (url "" for SQLite: the default ./app.db in dir), url_arg(url) (the --url option, or
-- ""), versions(handle), tables(handle) (sorted, luamig's own included), query(handle, sql) (rows by \n, columns by
-- |), exists(handle) (whether luamig created anything yet) and drop(handle).
function M.targets()
  return {
    {
      name = "sqlite",
      fresh = function(dir) return "", dir .. "/app.db" end,
      url_arg = function() return "" end,
      versions = M.versions, tables = M.tables, query = M.sql,
      exists = function(path) return M.exists(path) end,
      drop = function() end,
    },
    {
      name = "postgres",
      fresh = function()
        local name, url = M.pg_database()
        return url, name
      end,
      url_arg = function(url) return M.q("--url=" .. url) .. " " end,
      versions = M.pg_versions,
      tables = function(db)
        local t = {}
        for n in M.psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):gmatch("[^\n]+") do
          t[#t + 1] = n
        end
        return t
      end,
      query = M.psql,
      exists = function(db) return M.psql(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") ~= "0" end,
      drop = M.pg_drop,
    },
  }
end

-- json(text) -> the value of a JSON document (what --json prints), for specs; raises on malformed input
function M.json(text)
  local pos = 1
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local ESC = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = text:sub(pos, pos)
      if c == '"' then pos = pos + 1 return table.concat(out) end
      if c == "" then error("unterminated string in JSON") end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        if e == "u" then
          out[#out + 1] = utf8.char(tonumber(text:sub(pos + 2, pos + 5), 16))
          pos = pos + 6
        else
          out[#out + 1] = assert(ESC[e], "bad escape in JSON")
          pos = pos + 2
        end
      else
        out[#out + 1] = c
        pos = pos + 1
      end
    end
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1 return t end
      repeat
        ws()
        local k = str()
        ws()
        assert(text:sub(pos, pos) == ":", "':' expected in JSON")
        pos = pos + 1
        t[k] = value()
        ws()
        c = text:sub(pos, pos)
        pos = pos + 1
      until c ~= ","
      assert(c == "}", "'}' expected in JSON")
      return t
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1 return t end
      repeat
        t[#t + 1] = value()
        ws()
        c = text:sub(pos, pos)
        pos = pos + 1
      until c ~= ","
      assert(c == "]", "']' expected in JSON")
      return t
    elseif c == '"' then
      return str()
    end
    for word, v in pairs({ ["true"] = true, ["false"] = false, ["null"] = M.JSON_NULL }) do
      if text:sub(pos, pos + #word - 1) == word then
        pos = pos + #word
        return v
      end
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    assert(num and num ~= "", "bad JSON at " .. pos)
    pos = pos + #num
    return tonumber(num)
  end
  local v = value()
  ws()
  assert(pos > #text, "trailing text after JSON")
  return v
end
M.JSON_NULL = setmetatable({}, { __tostring = function() return "null" end })

return M
