-- What a raw SQL statement (op.execute) does to the schema, for lint and the lock plan: an lpeg grammar for the DDL
-- forms the safety rules are about. classify(statement) -> a list of actions, each { kind = ..., table = ... } with
-- the fields of its kind; or nil for a statement it does not know. Keywords are case-insensitive; names may be
-- quoted or schema-qualified (the table is the last part; bare names are folded to lower case, as PostgreSQL does).
--
-- Kinds: add_column (column, type, not_null, default, references), drop_column, alter_type (column, type),
-- set_not_null, drop_not_null, set_default (default), drop_default, add_constraint (ctype = foreign_key | check |
-- unique | primary_key | exclude, name, not_valid, using_index, reftable, expr), validate_constraint (name),
-- drop_constraint (name), rename_column (column, to), rename_table (to), rename_constraint, alter_other,
-- create_table, drop_table, create_index (name, concurrently, unique), drop_index (name, concurrently),
-- vacuum_full, vacuum, cluster, reindex (target, concurrently), lock (mode), dml (verb).
local lpeg = require("lpeg")

local P, R, S, C, Cc, Ct, Cg = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cc, lpeg.Ct, lpeg.Cg
local V, Cf, Cmt = lpeg.V, lpeg.Cf, lpeg.Cmt
local lower, upper, ipairs, pairs, type, pcall = string.lower, string.upper, ipairs, pairs, type, pcall

local idchar = R("az", "AZ", "09") + S("_$")
local line_comment = P("--") * (1 - P("\n")) ^ 0
local block_comment = P("/*") * (1 - P("*/")) ^ 0 * P("*/") ^ -1
local sp = (S(" \t\r\n") + line_comment + block_comment) ^ 0
local single = P("'") * (P("''") + (1 - P("'"))) ^ 0 * P("'")
local double = P('"') * (P('""') + (1 - P('"'))) ^ 0 * P('"')
local dollar = Cmt(P("$") * C((R("az", "AZ", "09") + P("_")) ^ 0) * P("$"), function(subject, pos, tag)
  local close = "$" .. tag .. "$"
  local e = subject:find(close, pos, true)
  return e and (e + #close) or false
end)

-- K("not null"): the words, case-insensitive, with any space between them, ending at a word boundary
local function K(words)
  local p
  for w in words:gmatch("%S+") do
    local k = P(true)
    for c in w:gmatch(".") do k = k * S(lower(c) .. upper(c)) end
    k = k * -idchar
    p = p and (p * sp * k) or k
  end
  return p * sp
end

-- a name: "Quoted" (as written) or bare (lower-cased); a qualified name captures its last part
local quoted = P('"') * Cf(Cc("") * (C((1 - P('"')) ^ 1) + P('""') * Cc('"')) ^ 0, function(a, b) return a .. b end)
  * P('"')
local bare = (R("az", "AZ", "__") * idchar ^ 0) / lower
local name = (quoted + bare) * sp
local qname = ((name * P(".") * sp) / 0) ^ -1 * name

-- balanced parentheses, and the text of a clause up to the next top-level comma (or the end)
local paren = P({ "(" * ((1 - S("()'\"$")) + single + double + dollar + P("$") + V(1)) ^ 0 * ")" })
local clause = C(((1 - S(",()'\"$")) + single + double + dollar + P("$") + paren) ^ 0)
local rest = ((1 - S("()'\"$")) + single + double + dollar + P("$") + paren) ^ 0

local function field(k, patt) return Cg(patt, k) end

-- Column definition clauses (ADD COLUMN): what follows the name and type, looked into by a scan of words.
local function column_facts(text)
  local facts = {}
  local scan = lower(text:gsub("'[^']*'", "''"))
  facts.not_null = scan:find("not%s+null") ~= nil
  if scan:find("primary%s+key") then facts.not_null = true end
  local d = text:match("[Dd][Ee][Ff][Aa][Uu][Ll][Tt]%s+(.-)%s*$")
  if d then
    -- the default ends where the next column constraint begins
    local cut = d:lower():find("%s+not%s+null") or d:lower():find("%s+null") or d:lower():find("%s+references%s")
      or d:lower():find("%s+check%s*%(") or d:lower():find("%s+unique") or d:lower():find("%s+primary%s+key")
      or d:lower():find("%s+constraint%s") or d:lower():find("%s+generated%s")
    facts.default = cut and d:sub(1, cut - 1) or d
  end
  local ref = scan:match("references%s+([%w_.\"]+)")
  if ref then facts.references = ref:gsub('"', ""):match("([^.]+)$") end
  if scan:find("generated%s+always%s+as%s*%(") and scan:find("stored") then facts.generated = true end
  return facts
end

local function add_column(col, ty, tail)
  local a = column_facts(tail or "")
  a.kind, a.column, a.type = "add_column", col, ty
  return a
end

-- a type: words and a parenthesised part, up to a column constraint keyword
local STOP = K("not") + K("null") + K("default") + K("references") + K("check") + K("unique") + K("primary")
  + K("constraint") + K("collate") + K("generated") + K("using")
local type_text = C(((1 - S(",()'\" \t\r\n")) ^ 1 * sp + paren * sp - STOP) ^ 1) / function(s) return s:match("^(.-)%s*$") end

local not_valid = (K("not valid") * Cc(true) + Cc(false))

local function constraint_action(t)
  t.kind = "add_constraint"
  if t.ctype == "foreign_key" then
    -- the tail of a foreign key: NOT VALID after the references clause
    t.not_valid = t.not_valid_fk or false
  end
  t.not_valid_fk = nil
  return t
end

local fk_tail = Cmt(C(rest), function(_, pos, txt) return pos, lower(txt):find("not%s+valid") ~= nil end)

local add_constraint = K("add") * Ct((K("constraint") * field("name", name)) ^ -1 * (
    field("ctype", K("foreign key") * Cc("foreign_key")) * paren * sp * K("references") * field("reftable", qname)
      * field("not_valid_fk", fk_tail)
    + field("ctype", K("check") * Cc("check")) * field("expr", C(paren)) * sp * field("not_valid", not_valid) * rest
    + field("ctype", (K("unique") * Cc("unique") + K("primary key") * Cc("primary_key")))
      * (K("using index") * field("using_index", name) + paren * sp) * rest
    + field("ctype", K("exclude") * Cc("exclude")) * rest)) / constraint_action

local add_col = K("add") * K("column") ^ -1 * K("if not exists") ^ -1 * (name - K("constraint")) * type_text
  * clause / add_column

local function kind(k) return field("kind", Cc(k)) end

local alter_col = K("alter") * K("column") ^ -1 * Ct(field("column", name) * (
    kind("alter_type") * (K("set data type") + K("type")) * field("type", type_text) * rest
  + kind("set_not_null") * K("set not null")
  + kind("drop_not_null") * K("drop not null")
  + kind("set_default") * K("set default") * field("default", clause / function(s) return s:match("^(.-)%s*$") end)
  + kind("drop_default") * K("drop default")
  + kind("alter_other") * rest))

local action = add_constraint + add_col
  + Ct(K("drop constraint") * kind("drop_constraint") * K("if exists") ^ -1 * field("name", name) * rest)
  + Ct(K("drop") * K("column") ^ -1 * kind("drop_column") * K("if exists") ^ -1 * field("column", name) * rest)
  + alter_col
  + Ct(K("validate constraint") * kind("validate_constraint") * field("name", name))
  + Ct(K("rename constraint") * kind("rename_constraint") * name * K("to") * field("to", name))
  + Ct(K("rename to") * kind("rename_table") * field("to", name))
  + Ct(K("rename") * K("column") ^ -1 * kind("rename_column") * field("column", name) * K("to") * field("to", name))
  + Ct(kind("alter_other") * (clause / 0))

local alter_table = K("alter table") * K("if exists") ^ -1 * K("only") ^ -1 * Cg(qname, "table_name")
  * Ct(action * (P(",") * sp * action) ^ 0)

local function list_of(kind_name, extra)
  return function(...)
    local out = {}
    for i, t in ipairs({ ... }) do
      local a = { kind = kind_name, table = t }
      for k, v in pairs(extra or {}) do a[k] = v end
      out[i] = a
    end
    return out
  end
end

local qname_list = qname * (P(",") * sp * qname) ^ 0

local create_index = K("create") * Ct(field("unique", K("unique") * Cc(true)) ^ -1 * K("index")
  * field("concurrently", K("concurrently") * Cc(true)) ^ -1 * K("if not exists") ^ -1
  * (field("name", name - K("on"))) ^ -1 * K("on") * K("only") ^ -1 * field("table", qname) * kind("create_index") * rest)

local drop_index = K("drop index") * Ct(field("concurrently", K("concurrently") * Cc(true)) ^ -1 * K("if exists") ^ -1
  * field("name", qname) * kind("drop_index") * (P(",") * sp * qname) ^ 0 * rest)

local MODES = {}
for _, m in ipairs({ "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
  "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE" }) do MODES[m] = true end
-- a lock mode as PostgreSQL names it, or false for words that are none
local lock_mode = K("in") * C((1 - K("mode")) ^ 1) * K("mode") / function(m)
  m = upper(m):gsub("%s+", " "):match("^%s*(.-)%s*$")
  return MODES[m] and m or false
end

local statement = Ct(alter_table) / function(t)
    local out = t[1]
    for _, a in ipairs(out) do a.table = t.table_name end
    return out
  end
  + Ct(create_index)
  + Ct(drop_index)
  + K("drop table") * K("if exists") ^ -1 * (qname_list / list_of("drop_table")) * rest
  + K("create") * (K("global") + K("local")) ^ -1 * (K("temporary") + K("temp") + K("unlogged")) ^ -1 * K("table")
    * K("if not exists") ^ -1 * (qname / list_of("create_table")) * rest
  + K("vacuum") * (P("(") * Cmt(C((1 - P(")")) ^ 0), function(_, pos, o)
      return pos, lower(o):find("full") ~= nil
    end) * P(")") * sp + K("full") * Cc(true) * (K("freeze") + K("verbose") + K("analyze")) ^ 0 + Cc(false)
      * (K("freeze") + K("verbose") + K("analyze")) ^ 0)
    * (qname + Cc(nil)) * rest / function(full, tbl)
      return { { kind = full and "vacuum_full" or "vacuum", table = tbl } }
    end
  + K("cluster") * K("verbose") ^ -1 * (qname + Cc(nil)) * rest / function(tbl) return { { kind = "cluster", table = tbl } } end
  + K("reindex") * (paren * sp) ^ -1 * C(K("index") + K("table") + K("schema") + K("database") + K("system"))
    * (K("concurrently") * Cc(true) + Cc(false)) * qname * rest / function(target, conc, obj)
      target = lower(target:match("^(%a+)"))
      return { { kind = "reindex", target = target, concurrently = conc, table = target == "table" and obj or nil,
        name = obj } }
    end
  + K("lock") * K("table") ^ -1 * K("only") ^ -1 * Ct(qname_list) * (lock_mode + Cc("ACCESS EXCLUSIVE"))
    * K("nowait") ^ -1 / function(tables, mode)
      local out = {}
      if not mode then return out end
      for i, t in ipairs(tables) do out[i] = { kind = "lock", table = t, mode = mode } end
      return out
    end
  + (K("insert into") * qname / list_of("dml", { verb = "insert" })
    + K("update") * K("only") ^ -1 * qname / list_of("dml", { verb = "update" })
    + K("delete from") * K("only") ^ -1 * qname / list_of("dml", { verb = "delete" })) * rest

local grammar = sp * statement * sp * P(";") ^ -1 * sp * -1

-- classify(sql) -> list of actions, or nil when the statement is not one the grammar knows
local function classify(sql)
  -- (lpeg gives up on nesting deeper than its backtrack stack: such a statement is one it does not know)
  local ok, res = pcall(grammar.match, grammar, sql)
  if not ok then return nil end
  if type(res) ~= "table" or #res == 0 then return nil end
  return res
end

return { classify = classify }
