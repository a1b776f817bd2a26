-- Database URLs with lpeg: sqlite:///relative.db, sqlite:////abs.db, sqlite:///:memory:, sqlite://,
-- postgresql://user:pass@host:port/db?k=v (also postgres://, unix-socket hosts, driver suffixes such as
-- sqlite+aiosqlite:// or postgresql+asyncpg:// so that an alembic.ini URL works as is).
-- A password is never shown: mask() is what every message prints.
local lpeg = require("lpeg")

local P, R, S, C, Ct, Cg, Cc = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Ct, lpeg.Cg, lpeg.Cc
local format, char, tonumber, concat = string.format, string.char, tonumber, table.concat
local gsub, lower = string.gsub, string.lower

local alpha = R("az", "AZ")
local digit = R("09")
local hexd = R("09", "af", "AF")

local scheme = C(alpha * (alpha + digit + S(".-")) ^ 0) * (P("+") * C((alpha + digit + S("._-")) ^ 1) + Cc(nil)) * P("://")

-- The authority and path of a server URL: [user[:password]@][host][:port][/database][?query]
local user = Cg(C((1 - S(":@/?#")) ^ 0), "user")
local password = P(":") * Cg(C((1 - S("@/?#")) ^ 0), "password")
local userinfo = (user * password ^ -1 * P("@"))
-- the hosts: host[:port], several separated by commas (libpq's multi-host form), an IPv6 address in brackets
local host = Cg(P("[") * C((1 - P("]")) ^ 1) * P("]") + C((1 - S(":/?#[],")) ^ 1), "host")
local port = P(":") * Cg(C((1 - S("/?#,")) ^ 0), "port")
local hostport = Ct(host ^ -1 * port ^ -1)
local hosts = Cg(Ct(hostport * (P(",") * hostport) ^ 0), "hosts")
local database = P("/") * Cg(C((1 - S("?#")) ^ 0), "database")
local query = P("?") * Cg(C(P(1) ^ 0), "query")
local server = Ct(userinfo ^ -1 * hosts * database ^ -1 * query ^ -1) * -1

-- %XX escapes decoded; a % not followed by two hex digits fails the match.
local unescape_pat = lpeg.Cs(((P("%") * C(hexd * hexd) / function(h) return char(tonumber(h, 16)) end)
  + (1 - P("%"))) ^ 0) * -1

local function unescape(s, what)
  local out = unescape_pat:match(s)
  if out == nil then return nil, format("bad percent-escape in the %s", what) end
  return out
end

-- mask_text(s): hides what looks like a password in any URL-bearing text; used on text that may not parse. It reads
-- a password as the parser does (after "user:", up to the next "@"; a query's password= up to the next "&"), so
-- nothing the parser would take for a password, spaces and line breaks included, survives; at worst it hides more.
local function mask_text(s)
  s = gsub(s, "(%a[%w+.-]*://[^:@/?#]*:)[^@]*@", "%1***@")
  s = gsub(s, "([?&][Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]=)([^&]*)", function(k, v)
    -- text masked once already ("password=***" and then the rest of a message: a quote or a space, after at most
    -- one mark of punctuation) stays as it is; a value that only begins with *** ("***:secret") is a password
    if v == "***" or v:find("^%*%*%*[:;,.]?['\"%s]") or v:find("^%*%*%*[:;,.]$") then return k .. v end
    return k .. "***"
  end)
  return s
end

local ESCAPED_KEY = "a query key cannot be percent-escaped"

local function parse_query(q)
  local params, order = {}, {}
  if q == nil or q == "" then return params, order end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    -- keys are libpq keywords: plain words, never escaped (an escaped "password" would slip past masking)
    if k:find("%", 1, true) then return nil, ESCAPED_KEY end
    local uk, e1 = unescape(k, "query")
    local uv, e2 = unescape(v, "query")
    if not uk or not uv then return nil, e1 or e2 end
    if params[uk] == nil then order[#order + 1] = uk end
    params[uk] = uv
  end
  return params, order
end

-- scheme -> the dialect, and the form of the rest of its URL: a file path, or a server's authority
local DIALECTS = { sqlite = "sqlite", postgresql = "postgresql", postgres = "postgresql" }
local FILE_FORM = { sqlite = true }

-- parse(s) -> { dialect = "sqlite", path = "app.db" | ":memory:" } or
--   { dialect = "postgresql", user, password, host, port, database, params = {...} }; or nil, message.
-- Every message names the URL with its password masked.
local function parse(s)
  if type(s) ~= "string" or s == "" then return nil, "empty database URL" end
  local shown = mask_text(s)
  local function fail(msg) return nil, format("bad database URL '%s': %s", shown, msg) end
  local name, driver, rest = (scheme * C(P(1) ^ 0)):match(s)
  if not name then
    return fail("expected a URL such as sqlite:///app.db or postgresql://user@host/db")
  end
  local dialect = DIALECTS[lower(name)]
  if not dialect then
    return fail(format("unknown scheme '%s' (expected sqlite:// or postgresql://)", name))
  end
  local u = { dialect = dialect, driver = driver, url = s }
  if FILE_FORM[dialect] then
    local pathpart, q = rest:match("^([^?]*)%??(.*)$")
    if pathpart == "" then
      u.path = ":memory:"
    elseif pathpart:sub(1, 1) ~= "/" then
      return fail("a sqlite URL takes no host: use sqlite:///relative.db or sqlite:////absolute/path.db")
    else
      local p, err = unescape(pathpart:sub(2), "path")
      if not p then return fail(err) end
      u.path = p == "" and ":memory:" or p
    end
    local params, err = parse_query(q)
    if not params then return fail(err) end
    u.params = params
    return u
  end
  local t = server:match(rest)
  if not t then return fail("cannot read user, host, port and database") end
  for _, k in ipairs({ "user", "password", "database" }) do
    if t[k] ~= nil then
      local v, err = unescape(t[k], k)
      if not v then return fail(err) end
      u[k] = v ~= "" and v or nil
    end
  end
  -- each host with its port; several hosts go to libpq as its comma lists (host='a,b' port='5432,5433')
  local names, ports, any_port = {}, {}, false
  for i, hp in ipairs(t.hosts) do
    local h, err = unescape(hp.host or "", "host")
    if not h then return fail(err) end
    names[i] = h
    ports[i] = ""
    if hp.port and hp.port ~= "" then
      local n = tonumber(hp.port)
      if not n or not (digit ^ 1 * -1):match(hp.port) or n < 1 or n > 65535 then
        return fail(format("port '%s' is not a number from 1 to 65535", hp.port))
      end
      ports[i], any_port = n, true
    end
  end
  if #names == 1 then
    u.host = names[1] ~= "" and names[1] or nil
    if any_port then u.port = ports[1] end
  else
    for _, h in ipairs(names) do
      if h == "" then return fail("a URL with several hosts names each of them") end
    end
    u.host = concat(names, ",")
    if any_port then
      for i, p in ipairs(ports) do ports[i] = tostring(p) end
      u.port = concat(ports, ",")
    end
    u.hosts = names
  end
  local params, order = parse_query(t.query)
  if not params then
    if order == ESCAPED_KEY then
      -- an escaped key may hide a password= from the mask: show no query value at all
      shown = gsub(shown, "%?.*$", function(q) return (gsub(q, "=[^&]*", "=***")) end)
    end
    return fail(order)
  end
  u.params, u.param_order = params, order
  if params.host and not u.host then u.host = params.host end
  return u
end

-- mask(s) -> the URL text with any password replaced by ***
local function mask(s)
  if s == nil then return nil end
  return mask_text(s)
end

-- conninfo(u) -> a libpq keyword/value connection string for a parsed postgresql URL (values quoted).
local function conninfo(u)
  local parts = {}
  local function add(k, v)
    if v == nil then return end
    v = gsub(gsub(tostring(v), "\\", "\\\\"), "'", "\\'")
    parts[#parts + 1] = format("%s='%s'", k, v)
  end
  add("host", u.host)
  add("port", u.port)
  add("dbname", u.database)
  add("user", u.user)
  add("password", u.password)
  for _, k in ipairs(u.param_order or {}) do
    if k ~= "host" then add(k, u.params[k]) end
  end
  return concat(parts, " ")
end

return { parse = parse, mask = mask, conninfo = conninfo }
