-- SQL text with lpeg: where placeholders are (outside string literals, quoted names and comments), so that offline
-- (--sql) output can write bound values as literals, and where one statement ends and the next begins.
local lpeg = require("lpeg")

local P, R, S, C, Cs, Ct, Cp = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cs, lpeg.Ct, lpeg.Cp
local format, tonumber = string.format, tonumber

local single = P("'") * (P("''") + (1 - P("'"))) ^ 0 * P("'") ^ -1
local double = P('"') * (P('""') + (1 - P('"'))) ^ 0 * P('"') ^ -1
local line_comment = P("--") * (1 - P("\n")) ^ 0
local block_comment = P("/*") * (1 - P("*/")) ^ 0 * P("*/") ^ -1
-- PostgreSQL dollar quoting: $$ ... $$ or $tag$ ... $tag$
local dollar = lpeg.Cmt(P("$") * C((R("az", "AZ", "09") + P("_")) ^ 0) * P("$"), function(subject, pos, tag)
  local close = "$" .. tag .. "$"
  local e = subject:find(close, pos, true)
  return e and (e + #close) or (#subject + 1)
end)
local opaque = single + double + line_comment + block_comment + dollar
local ident = (R("az", "AZ", "09") + P("_")) ^ 1

-- inline(sql, params, literal) -> sql with each ? / ?NNN / :name replaced by literal(value); or nil, message
local function inline(sql, params, literal)
  if params == nil then return sql end
  local pos, err = 0, nil
  local function positional(num)
    local k = num ~= "" and tonumber(num) or nil
    if not k then
      pos = pos + 1
      k = pos
    end
    local v = params[k]
    if v == nil and k > #params then
      err = err or format("the SQL has more ? placeholders than the %d values given", #params)
      return "NULL"
    end
    return literal(v)
  end
  local function named(name)
    local v = params[name]
    if v == nil then
      err = err or format("no value given for parameter :%s", name)
      return "NULL"
    end
    return literal(v)
  end
  local placeholder = (P("?") * C(R("09") ^ 0)) / positional + (P(":") * C(ident)) / named
  local pat = Cs((opaque + P("::") + placeholder + 1) ^ 0)
  local out = pat:match(sql)
  if err then return nil, err end
  return out
end

-- split(sql) -> list of statements (without their ";", trimmed, empty ones dropped)
local stmt_body = (opaque + (1 - P(";"))) ^ 0
local splitter = Ct((Cp() * stmt_body * Cp() * P(";")) ^ 0 * Cp() * stmt_body * Cp())

local function split(sql)
  local marks = splitter:match(sql)
  local out = {}
  for i = 1, #marks, 2 do
    local s = sql:sub(marks[i], marks[i + 1] - 1):match("^%s*(.-)%s*$")
    if s ~= "" then out[#out + 1] = s end
  end
  return out
end

return { inline = inline, split = split }
