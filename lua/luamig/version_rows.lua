-- The version rows a step or a stamp leaves, with Alembic's rules (its HeadMaintainer): methods of the planner
-- (luamig.revision_plan), installed into its class. Pure: sets of revision ids in, sorted lists out.
local concat, ipairs, pairs = table.concat, ipairs, pairs

local M = {}

local fail, sorted, keys, unique

local Methods = {}

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- A step's version-row changes, applied to a set of rows; nil when a change does not fit the rows (a row to move or
-- delete is absent, or one to add is present)
local function apply(rows, deletes, moves, inserts)
  for _, d in ipairs(deletes) do
    if not rows[d] then return nil end
    rows[d] = nil
  end
  for _, m in ipairs(moves) do
    if not rows[m[1]] or rows[m[2]] then return nil end
    rows[m[1]] = nil
    rows[m[2]] = true
  end
  for _, i in ipairs(inserts) do
    if rows[i] then return nil end
    rows[i] = true
  end
  return rows
end

-- not_needed_by(ids, others) -> the ids that are not ancestors of any of others (through dependencies too)
function Methods:not_needed_by(ids, others)
  if #others == 0 then return ids end
  local needed = self.g:ancestors(others)
  local out = {}
  for _, id in ipairs(ids) do if not needed[id] then out[#out + 1] = id end end
  return out
end

-- rows_after(rows, id, direction) -> the version rows after applying (upgrade) or reverting (downgrade) id: the
-- step moves the rows of its parents to itself (a new branch adds a row, a merge joins rows), or back (the last
-- revision of a branch deletes its row, unless a parent is still needed by another row; a merge splits into rows).
function Methods:rows_after(list, id, direction)
  local g = self.g
  local rows = set_of(list)
  local downs = g:walk_parents(id)
  local res
  if direction == "upgrade" then
    local present = {}
    for _, d in ipairs(downs) do if rows[d] then present[#present + 1] = d end end
    if #downs == 0 or #present == 0 then
      res = apply(rows, {}, {}, { id })
    elseif #downs > 1 and #present > 1 then
      local others = {}
      local from = set_of(downs)
      for r in pairs(rows) do if not from[r] then others[#others + 1] = r end end
      local moving = self:not_needed_by(sorted(downs), others)
      local deletes = {}
      for i = 1, #moving - 1 do deletes[i] = moving[i] end
      res = moving[1] and apply(rows, deletes, { { moving[#moving], id } }, {})
    elseif #present == 1 then
      res = apply(rows, {}, { { present[1], id } }, {})
    end
  elseif rows[id] then
    local others = {}
    for r in pairs(rows) do if r ~= id then others[#others + 1] = r end end
    local to = self:not_needed_by(sorted(downs), others)
    if #downs == 0 or #to == 0 then
      res = apply(rows, { id }, {}, {})
    else
      local inserts = {}
      for i = 1, #to - 1 do inserts[i] = to[i] end
      res = apply(rows, {}, { { id, to[#to] } }, inserts)
    end
  end
  if not res then return nil end
  return keys(res)
end

-- stamp_rows(current, specs) -> the version rows after stamping the targets: each replaces the rows on its own line
-- of descent (through dependencies); a target on no line of the rows adds one; base removes the rows it stands for
function Methods:stamp_rows(current, specs)
  local g = self.g
  local heads = {}
  for _, h in ipairs(current) do heads[#heads + 1] = self:for_ident(h).revision end
  if #specs == 0 then specs = { "base" } end
  local filtered = {}
  for _, s in ipairs(specs) do
    for _, h in ipairs(self:lineage(heads, s, true)) do filtered[#filtered + 1] = h end
  end
  filtered = unique(filtered)
  local dests = {}
  for _, s in ipairs(specs) do
    for _, r in ipairs(self:revisions(s, current)) do dests[#dests + 1] = r.revision end
  end
  local rows = set_of(heads)
  if #dests == 0 then
    for _, h in ipairs(filtered) do rows[h] = nil end
    return keys(rows)
  end
  local in_filtered = set_of(filtered)
  for _, dest in ipairs(dests) do
    if not in_filtered[dest] then
      -- the rows on dest's own line of descent move to it (Alembic moves every row the targets share a line with,
      -- also rows on other lines: README's deliberate difference)
      local below = g:descendants({ dest })
      local above = g:ancestors({ dest })
      local from, up = {}, true
      local down_hit = false
      for _, h in ipairs(filtered) do
        if below[h] or above[h] then from[#from + 1] = h end
        if below[h] then down_hit = true end
      end
      up = not down_hit
      local present = {}
      for _, f in ipairs(from) do if rows[f] then present[#present + 1] = f end end
      local res
      if #from == 0 or #present == 0 or (up and #present < #from and not rows[dest]) then
        -- a line the rows do not have yet (or no longer, after an earlier target): a row of its own
        res = apply(rows, {}, {}, rows[dest] and {} or { dest })
      elseif rows[dest] then
        res = apply(rows, present, {}, {})
      else
        local deletes = {}
        for i = 1, #present - 1 do deletes[i] = present[i] end
        res = apply(rows, deletes, { { present[#present], dest } }, {})
      end
      if not res then fail("cannot stamp %s over the version rows %s", dest, concat(keys(rows), ", ")) end
      rows = res
    end
  end
  return keys(rows)
end

-- install(Plan, helpers): the methods into the planner's class; helpers: its fail, sorted, keys and unique
function M.install(Plan, helpers)
  fail, sorted, keys, unique = helpers.fail, helpers.sorted, helpers.keys, helpers.unique
  for k, f in pairs(Methods) do Plan[k] = f end
end

return M
