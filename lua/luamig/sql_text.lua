-- SQL text with lpeg: where placeholders are (outside string literals, quoted names and comments), so that offline
-- (--sql) output can write bound values as literals, and where one statement ends and the next begins.
local lpeg = require("lpeg")

local P, R, S, C, Cs, Ct, Cp = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cs, lpeg.Ct, lpeg.Cp
local format, tonumber, concat, setmetatable = string.format, tonumber, table.concat, setmetatable
local find, gsub, type = string.find, string.gsub, type

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

-- The placeholder grammar is compiled once; the values of the call in progress live in these upvalues.
local cur_params, cur_literal, cur_pos, cur_err

local function positional(num)
  local k = num ~= "" and tonumber(num) or nil
  if not k then
    cur_pos = cur_pos + 1
    k = cur_pos
  end
  local v = cur_params[k]
  if v == nil and k > #cur_params then
    cur_err = cur_err or format("the SQL has more ? placeholders than the %d values given", #cur_params)
    return "NULL"
  end
  return cur_literal(v)
end

local function named(name)
  local v = cur_params[name]
  if v == nil then
    cur_err = cur_err or format("no value given for parameter :%s", name)
    return "NULL"
  end
  return cur_literal(v)
end

local placeholder = (P("?") * C(R("09") ^ 0)) / positional + (P(":") * C(ident)) / named
-- Runs of characters that can start nothing are taken whole first: most of a statement is such a run.
local plain = (1 - S("'\"-/$?:")) ^ 1
local inliner = Cs((plain + opaque + P("::") + placeholder + 1) ^ 0)

-- inline(sql, params, literal) -> sql with each ? / ?NNN / :name replaced by literal(value); or nil, message
local function inline(sql, params, literal)
  if params == nil then return sql end
  cur_params, cur_literal, cur_pos, cur_err = params, literal, 0, nil
  local out = inliner:match(sql)
  local err = cur_err
  cur_params, cur_literal = nil, nil
  if err then return nil, err end
  return out
end

-- numbered(sql, params) -> sql with ? / ?NNN / :name turned into $1, $2 ... (one number per distinct name), the
-- values in that order and their count; or nil, message. For drivers whose placeholders are numbered (libpq).
local num_values, num_count, num_names, num_pos, num_err

local function num_positional(digits)
  local k = digits ~= "" and tonumber(digits) or nil
  if not k then
    num_pos = num_pos + 1
    k = num_pos
  end
  if k > #cur_params and cur_params[k] == nil then
    num_err = num_err or format("the SQL has more ? placeholders than the %d values given", #cur_params)
  end
  num_count = num_count + 1
  num_values[num_count] = cur_params[k]
  return "$" .. num_count
end

local function num_named(name)
  local n = num_names[name]
  if n then return "$" .. n end
  local v = cur_params[name]
  if v == nil then num_err = num_err or format("no value given for parameter :%s", name) end
  num_count = num_count + 1
  num_values[num_count] = v
  num_names[name] = num_count
  return "$" .. num_count
end

local numberer = Cs((plain + opaque + P("::") + (P("?") * C(R("09") ^ 0)) / num_positional
  + (P(":") * C(ident)) / num_named + 1) ^ 0)

local function numbered(sql, params)
  cur_params, num_values, num_count, num_names, num_pos, num_err = params, {}, 0, {}, 0, nil
  local out = numberer:match(sql)
  local values, count, err = num_values, num_count, num_err
  cur_params, num_values, num_names = nil, nil, nil
  if err then return nil, err end
  return out, values, count
end

-- inline_plain(sql, params, literal): the same for SQL known to hold no quotes, comments or :names (luamig's own
-- bookkeeping statements): every ? is a placeholder.
local plain_pieces = setmetatable({}, { __mode = "k" })

local function inline_plain(sql, params, literal)
  local pieces = plain_pieces[sql]
  if not pieces then
    pieces = {}
    local start = 1
    while true do
      local q = sql:find("?", start, true)
      if not q then break end
      pieces[#pieces + 1] = sql:sub(start, q - 1)
      start = q + 1
    end
    pieces[#pieces + 1] = sql:sub(start)
    plain_pieces[sql] = pieces
  end
  local out = { pieces[1] }
  local n = 1
  for k = 2, #pieces do
    local v = params[k - 1]
    if type(v) == "string" then
      -- the common case, written here rather than through the dialect: a quoted string literal
      if find(v, "'", 1, true) then v = gsub(v, "'", "''") end
      out[n + 1] = "'" .. v .. "'"
    else
      out[n + 1] = literal(v)
    end
    out[n + 2] = pieces[k]
    n = n + 2
  end
  return concat(out, "", 1, n)
end

-- split(sql) -> list of statements (without their ";", trimmed, empty ones dropped)
local stmt_body = ((1 - S("'\"-/$;")) ^ 1 + opaque + (1 - P(";"))) ^ 0
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

return { inline = inline, inline_plain = inline_plain, numbered = numbered, split = split }
