-- Revision specifiers with lpeg: head, heads, base, current, ids and prefixes, +N / -N, rev+N, head-1, base+2,
-- label@head, label@heads, label@base, label@+1, label@rev, and ranges a:b, a:, :b.
local lpeg = require("lpeg")

local P, R, S, C, Ct, Cg, Cc = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Ct, lpeg.Cg, lpeg.Cc
local tonumber, format = tonumber, string.format

local digit = R("09")
local number = C(S("+-") * digit ^ 1) / tonumber
local ident_char = 1 - S("@:+- \t\r\n")
local word = C(ident_char ^ 1)
local keyword = (P("heads") + P("head") + P("base") + P("current")) * -ident_char

local anchor = Cg(C(keyword), "anchor") + Cg(Cc("rev"), "anchor") * Cg(word, "id")
local label = Cg(word, "label") * P("@")
-- [label@] ( anchor [+-N] | +-N )
local single = Ct(label ^ -1 * (anchor * Cg(number, "delta") ^ -1 + Cg(number, "delta")))
local spec = single * -1
local range = Ct(Cg(single + Cc(false), "from") * P(":") * Cg(single + Cc(false), "to")) * -1

-- parse(s) -> { label?, anchor = "head"|"heads"|"base"|"current"|"rev"|nil, id?, delta? }, or nil, message
local function parse(s)
  if type(s) ~= "string" or s == "" then return nil, "an empty revision target" end
  local t = spec:match(s)
  if not t then return nil, format("'%s' is not a revision target (expected head, heads, base, a revision id, +N, -N, rev+N, label@head, ...)", s) end
  return t
end

-- parse_range(s) -> { from = spec|false, to = spec|false } for "a:b", "a:", ":b"; or nil, message
local function parse_range(s)
  local t = range:match(s)
  if not t or (not t.from and not t.to) then return nil, format("'%s' is not a revision range (expected a:b, a: or :b)", s) end
  return t
end

return { parse = parse, parse_range = parse_range }
