-- luamig.ini / alembic.ini parsing with lpeg, after Python's configparser: [sections], "key = value" or
-- "key: value", full-line and whitespace-preceded inline comments (; or #), indented continuation lines,
-- lower-cased keys, a [DEFAULT] section, and %(name)s / %% interpolation with "here" predefined.
local lpeg = require("lpeg")

local P, S, C, Cs = lpeg.P, lpeg.S, lpeg.C, lpeg.Cs
local lower, format = string.lower, string.format
local setmetatable, error, pcall, type = setmetatable, error, pcall, type

local sp = S(" \t")
local blank = sp ^ 0 * -1
local comment_line = sp ^ 0 * S("#;")
local continuation = sp ^ 1 * C((1 - S("\r\n")) ^ 1)
local section = sp ^ 0 * P("[") * C((1 - S("]\r\n")) ^ 1) * P("]") * sp ^ 0 * (S("#;") * P(1) ^ 0) ^ -1 * -1
local key = C((1 - S("=:[\r\n")) ^ 1)
local keyvalue = key * S("=:") * C(P(1) ^ 0)
-- An inline comment starts at ; or # preceded by white space.
local inline_comment = sp ^ 1 * S(";#") * P(1) ^ 0
local strip_comment = Cs(((inline_comment / "") + P(1)) ^ 0)
local line = C((1 - S("\r\n")) ^ 0) * (P("\r") ^ -1 * P("\n") + -1) * lpeg.Cp()

local function trim(s)
  return (s:match("^%s*(.-)%s*$"))
end

local Ini = {}
Ini.__index = Ini

-- parse(text, name) -> ini object, or nil, "name:line: message"
local function parse(text, name)
  name = name or "ini"
  local sections, order = {}, {}
  local cur, curkey, lineno = nil, nil, 0
  local pos = 1
  local n = #text
  while pos <= n do
    local s, nextpos = line:match(text, pos)
    if not s then break end
    pos = nextpos
    lineno = lineno + 1
    local where = format("%s:%d", name, lineno)
    if blank:match(s) then
      curkey = nil
    elseif comment_line:match(s) then
      -- a comment line does not end a multi-line value, as in configparser
    elseif continuation:match(s) and cur and curkey then
      local v = trim(strip_comment:match(s))
      if v ~= "" then
        cur.values[curkey] = cur.values[curkey] == "" and v or (cur.values[curkey] .. "\n" .. v)
      end
    else
      local secname = section:match(s)
      if secname then
        secname = trim(secname)
        if sections[secname] then
          return nil, format("%s: section [%s] appears twice", where, secname)
        end
        cur = { name = secname, values = {}, keys = {}, lines = {} }
        sections[secname] = cur
        order[#order + 1] = secname
        curkey = nil
      else
        local k, v = keyvalue:match(s)
        if not k or trim(k) == "" then
          return nil, format("%s: expected '[section]' or 'key = value', got '%s'", where, trim(s))
        end
        if not cur then
          return nil, format("%s: 'key = value' before any [section] header", where)
        end
        k = lower(trim(k))
        if cur.values[k] ~= nil then
          return nil, format("%s: key '%s' appears twice in [%s]", where, k, cur.name)
        end
        cur.values[k] = trim(strip_comment:match(v))
        cur.keys[#cur.keys + 1] = k
        cur.lines[k] = lineno
        curkey = k
      end
    end
  end
  return setmetatable({ name = name, sections = sections, order = order, defaults = {} }, Ini)
end

-- The interpolation grammar: %% is a literal %, %(name)s is replaced, any other % is an error.
local function interpolator(lookup)
  local ref = P("%(") * C((1 - S(")%")) ^ 1) * P(")s") / lookup
  return Cs(((P("%%") / function() return "%" end) + ref + (1 - P("%"))) ^ 0) * -1
end

function Ini:has_section(sec)
  return self.sections[sec] ~= nil
end

-- raw(section, key) -> the value before interpolation, or nil
function Ini:raw(sec, k)
  local s = self.sections[sec]
  local v = s and s.values[k]
  if v == nil then
    local d = self.sections.DEFAULT
    v = d and d.values[k]
  end
  if v == nil then v = self.defaults[k] end
  return v
end

-- get(section, key) -> the interpolated value, or nil if absent; raises "name: [section] key: message" on a
-- malformed value (callers catch it with pcall through Ini:value).
function Ini:get(sec, k, depth)
  depth = depth or 0
  local v = self:raw(sec, k)
  if v == nil then return nil end
  if depth > 10 then
    error({ ini = true, msg = format("%s: [%s] %s: interpolation nests too deep (a loop?)", self.name, sec, k) })
  end
  local pat = interpolator(function(ref)
    local r = self:get(sec, lower(ref), depth + 1)
    if r == nil then
      error({ ini = true, msg = format("%s: [%s] %s: '%%(%s)s' refers to an unknown key", self.name, sec, k, ref) })
    end
    return r
  end)
  local out = pat:match(v)
  if out == nil then
    error({ ini = true, msg = format("%s: [%s] %s: '%%' must be followed by '%%' or '(name)s' in '%s'",
      self.name, sec, k, v) })
  end
  return out
end

-- value(section, key) -> value or nil; or nil, message
function Ini:value(sec, k)
  local ok, v = pcall(self.get, self, sec, k)
  if ok then return v end
  if type(v) == "table" and v.ini then return nil, v.msg end
  error(v, 0)
end

function Ini:keys(sec)
  local s = self.sections[sec]
  return s and s.keys or {}
end

function Ini:line_of(sec, k)
  local s = self.sections[sec]
  return s and s.lines[k]
end


return { parse = parse, interpolator = interpolator }
