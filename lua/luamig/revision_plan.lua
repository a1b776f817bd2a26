-- Targets and plans over a revision graph, with Alembic's semantics: what `upgrade`, `downgrade` and `stamp` resolve a
-- target to, which revisions they run in which order, and which version rows each step leaves. Pure: takes a graph
-- (luamig.revision_graph) and the database's version rows, does no I/O.
--
-- Branch membership is by down_revision only: a branch is what descends from its labelled revision, and a
-- dependency (depends_on) is ordered before a revision without becoming a member of its branch. What to run is
-- computed through dependencies: an upgrade applies every ancestor a target needs, a downgrade reverts everything
-- that descends from or depends on what it removes. Deliberate differences from Alembic (README): `downgrade -1`
-- from a merge reverts the merge, a relative downgrade from several current heads is refused, and so is a target
-- naming a branch label that does not exist; `stamp` moves only the rows on a target's own line.
local target_grammar = require("luamig.target")

local format, concat, sort, ipairs, pairs, error, pcall, setmetatable, getmetatable, select =
  string.format, table.concat, table.sort, ipairs, pairs, error, pcall, setmetatable, getmetatable, select

-- The position before every base (Alembic's None as a walk's start) and the base a downward walk reaches.
local BEFORE, BASE = { "before" }, { "base" }

local Plan = {}
Plan.__index = Plan

local FAIL = {}

local function fail(msg, ...)
  error(setmetatable({ msg = select("#", ...) > 0 and format(msg, ...) or msg }, FAIL), 0)
end

-- protect(fn, ...) -> fn's results, or nil, message for a failure raised by fail()
local function protect(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
  if getmetatable(e) == FAIL then return nil, e.msg end
  error(e, 0)
end

local function sorted(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  sort(out)
  return out
end

local function keys(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  sort(out)
  return out
end

local function unique(ids)
  local out, seen = {}, {}
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id] = true
      out[#out + 1] = id
    end
  end
  return out
end

local function new(graph) return setmetatable({ g = graph }, Plan) end

-- lookup(s) -> the record of a revision id or of the revision declaring branch label s
function Plan:lookup(s)
  local g = self.g
  return g.by_id[s] or g.labels[s]
end

-- shares(id, against, versioned) -> true when id is, descends from or is an ancestor of one of the ids against
function Plan:shares(id, against, versioned)
  for _, a in ipairs(against) do
    if self.g:shares_lineage(id, a, versioned) then return true end
  end
  return false
end

-- resolve_branch(name) -> the record a branch name stands for: its labelled revision, or a revision by id or prefix
function Plan:resolve_branch(name)
  local r = self:lookup(name)
  if r then return r end
  local ok, found = pcall(self.for_ident, self, name)
  if ok and found then return found end
  fail("No such branch: '%s'", name)
end

-- for_ident(id, branch) -> the record of a full id, a label or a unique prefix (4+ characters); with branch, it must
-- share its lineage (by down_revision) with the branch's revision
function Plan:for_ident(id, branch)
  local g = self.g
  local on = branch and self:resolve_branch(branch)
  local r = self:lookup(id)
  if not r then
    if #id < 4 then
      fail("No such revision or branch '%s'; a partial revision id needs at least four characters", id)
    end
    local found = {}
    for _, rid in ipairs(g.order) do
      if rid:sub(1, #id) == id then found[#found + 1] = rid end
    end
    for l, lr in pairs(g.labels) do
      if #l > 3 and l:sub(1, #id) == id then found[#found + 1] = lr.revision end
    end
    found = unique(found)
    if on then found = self:lineage(found, branch, false) end
    if #found == 0 then fail("No such revision or branch '%s'", id) end
    if #found > 1 then fail("Multiple revisions start with '%s': %s", id, concat(sorted(found), ", ")) end
    r = g.by_id[found[1]]
  end
  if on and not g:shares_lineage(r.revision, on.revision, true) then
    fail("Revision %s is not a member of branch '%s'", r.revision, branch)
  end
  return r
end

local function split_label(spec)
  local label, rest = spec:match("^(.-)@(.*)$")
  if label then return rest, label end
  return spec, nil
end

-- current_head(label) -> the one head (of the branch), or nil when there is none; more than one fails
function Plan:current_head(label)
  local hs = self.g:heads()
  if label then hs = self:lineage(hs, label, false) end
  if #hs > 1 then
    if label then fail("Multiple heads are present on branch '%s' (%s); name one", label, concat(sorted(hs), ", ")) end
    fail("Multiple heads are present (%s); merge them with `luamig merge heads`, or name one (or `heads` for all)",
      concat(sorted(hs), ", "))
  end
  return hs[1]
end

-- number(spec, current) -> the ids a symbolic or literal target stands for, and its branch label
function Plan:number(spec, current)
  local id, label = split_label(spec)
  if id == "heads" then
    if label then return self:lineage(self.g:heads(), label, false), label end
    return sorted(self.g:real_heads()), label
  elseif id == "head" then
    local h = self:current_head(label)
    return h and { h } or {}, label
  elseif id == "base" then
    return {}, label
  elseif id == "current" then
    return sorted(current or {}), label
  elseif id == "" then
    fail("'%s' names no revision after the '@'", spec)
  end
  return { id }, label
end

-- lineage(ids, against, deps) -> the ids sharing lineage (by down_revision; through dependencies too with deps)
-- with what the target `against` stands for (its label's revision and its revisions); all of them when it stands
-- for nothing (base)
function Plan:lineage(ids, against, deps)
  local targets, label = self:number(against)
  local recs = {}
  if label then recs[#recs + 1] = self:resolve_branch(label).revision end
  for _, t in ipairs(targets) do recs[#recs + 1] = self:for_ident(t).revision end
  if #recs == 0 then return sorted(ids) end
  local out = {}
  for _, id in ipairs(ids) do
    if self:shares(id, recs, not deps) then out[#out + 1] = id end
  end
  return out
end

-- revisions(spec, current) -> the records a target stands for ({} for base)
function Plan:revisions(spec, current)
  local ids, label = self:number(spec, current)
  local out = {}
  for i, id in ipairs(ids) do out[i] = self:for_ident(id, label) end
  return out
end

-- revision(spec, current) -> the one record a target stands for, or BASE; several fail
function Plan:revision(spec, current)
  local ids, label = self:number(spec, current)
  if #ids > 1 then
    fail("'%s' stands for several revisions (%s); name one", spec, concat(sorted(ids), ", "))
  end
  if #ids == 0 then
    if label then self:resolve_branch(label) end
    return BASE
  end
  return self:for_ident(ids[1], label)
end

-- walk(from, steps, label) -> the position `steps` revisions up (children by down_revision, only those on the branch
-- label) or down (down_revisions) from a record, BEFORE or BASE; false when the walk runs out
function Plan:walk(from, steps, label, spec)
  local g = self.g
  local pos = from
  local n = steps > 0 and steps or -steps
  for _ = 1, n do
    local next_ = {}
    if steps > 0 then
      local ids = (pos == BEFORE or pos == BASE) and g:bases() or (g.children[pos.revision] or {})
      if label then ids = self:lineage(ids, label, false) end
      for i, id in ipairs(ids) do next_[i] = g.by_id[id] end
    elseif pos ~= BASE then
      local ids = pos == BEFORE and g:heads() or pos.down_revisions
      for i, id in ipairs(ids) do next_[i] = g.by_id[id] end
      if #next_ == 0 then next_[1] = BASE end
    end
    if #next_ == 0 then return false end
    if #next_ > 1 then
      local ids = {}
      for i, r in ipairs(next_) do ids[i] = r.revision end
      if steps < 0 then
        fail("Relative revision %s is ambiguous: %s is a merge of %s", spec, pos.revision, concat(ids, ", "))
      end
      fail("Relative revision %s is ambiguous: %s has %d next revisions (%s); name one, or a branch (label@+1)", spec,
        (pos == BEFORE or pos == BASE) and "<base>" or pos.revision, #ids, concat(sorted(ids), ", "))
    end
    pos = next_[1]
  end
  return pos
end

local function didnt(spec, n)
  fail("Relative revision %s didn't produce %d migrations", spec, n < 0 and -n or n)
end

local function symbol_of(t)
  if t.anchor == "rev" then return t.id end
  return t.anchor
end

-- all_current(ids) -> of the version rows and all they need, those nothing else of that set descends from
function Plan:all_current(ids)
  local g = self.g
  local set = g:ancestors(ids)
  local out = {}
  for id in pairs(set) do
    local covered = false
    for other in pairs(set) do
      if other ~= id and g:reaches(other, id, nil, true) then
        covered = true
        break
      end
    end
    if not covered then out[#out + 1] = id end
  end
  sort(out)
  return out
end

-- upgrade_targets(spec, current) -> the records an upgrade goes to ({} = base)
function Plan:upgrade_targets(spec, current)
  local t, err = target_grammar.parse(spec)
  if not t then fail(err) end
  if t.label then self:resolve_branch(t.label) end
  if not t.delta then
    if t.anchor == "current" then return self:revisions("current", current) end
    return self:revisions(spec, current)
  end
  local symbol, label = symbol_of(t), t.label
  if t.delta > 0 then
    if not symbol then
      local starts = sorted(current)
      if label then
        starts = self:lineage(current, label, false)
        if #starts == 0 then
          -- the branch has no current head: start from its newest revision the database has
          local active = self:lineage(keys(self.g:ancestors(current)), label, false)
          local is_parent = {}
          for _, id in ipairs(active) do
            for _, p in ipairs(self.g:walk_parents(id)) do is_parent[p] = true end
          end
          starts = {}
          for _, id in ipairs(active) do if not is_parent[id] then starts[#starts + 1] = id end end
        end
      end
      if #starts > 1 then
        fail("Ambiguous upgrade from multiple current revisions (%s); name a revision or a branch (label@+1)",
          concat(sorted(starts), ", "))
      end
      local reached = self:walk(starts[1] and self:revision(starts[1]) or BEFORE, t.delta, label, spec)
      if not reached then didnt(spec, t.delta) end
      return { reached }
    end
    local from = self:revision(symbol == "current" and "current" or symbol, current)
    local reached = self:walk(from == BASE and BEFORE or from, t.delta, label, spec)
    if not reached then didnt(spec, t.delta) end
    return { reached }
  end
  if not symbol then fail("'%s' is a step back: use `luamig downgrade %s`", spec, spec) end
  local from = label and self:revision(label .. "@" .. symbol, current) or self:revision(symbol, current)
  local reached = self:walk(from, t.delta, nil, spec)
  if not reached then didnt(spec, t.delta) end
  if reached == BASE then return {} end
  return { reached }
end

-- downgrade_target(spec, current) -> the record (or BASE) a downgrade goes to, and the branch it keeps to
function Plan:downgrade_target(spec, current)
  local t, err = target_grammar.parse(spec)
  if not t then fail(err) end
  -- an unknown branch is refused, where Alembic ignores it for some forms (and `nosuch@base` reverts everything)
  if t.label then self:resolve_branch(t.label) end
  if not t.delta or t.delta == 0 then
    local symbol = spec:match("^.*@(.*)$") or spec
    return self:revision(symbol, current), t.label
  end
  local symbol, label = symbol_of(t), t.label
  if t.delta > 0 then
    if not symbol then fail("'%s' is a step forward: use `luamig upgrade %s`", spec, spec) end
    local reached = self:walk(self:revision(symbol, current), t.delta, label, spec)
    if not reached then fail("Relative revision %s walked past the last revision", spec) end
    return reached, label
  end
  local relative = symbol == nil
  if relative then
    if label then
      local on = self:lineage(current, label, false)
      if #on == 0 then on = self:lineage(self:all_current(current), label, false) end
      if #on ~= 1 then
        fail("'%s': the database has %s on branch '%s'", spec,
          #on == 0 and "no revision" or ("several revisions (" .. concat(on, ", ") .. ")"), label)
      end
      symbol = on[1]
    else
      if #current == 0 then didnt(spec, t.delta) end
      local distinct = unique(current)
      if #distinct > 1 then
        fail("Ambiguous downgrade from multiple current revisions (%s); name one, e.g. `luamig downgrade %s@-1`",
          concat(sorted(distinct), ", "), sorted(distinct)[1])
      end
      symbol = distinct[1]
      label = symbol
    end
  end
  local from = label and self:revision(label .. "@" .. symbol, current) or self:revision(symbol, current)
  if t.delta == -1 and from ~= BASE and #from.down_revisions > 1 then
    -- one step back from a merge reverts the merge itself: its parents become heads again
    return self.g.by_id[from.down_revisions[1]], from.revision
  end
  local reached = self:walk(from, t.delta, nil, spec)
  if not reached then
    if relative then didnt(spec, t.delta) end
    fail("Relative revision %s walked past the base", spec)
  end
  return reached, label
end

-- overlapping(ids, what) fails when one of ids is an ancestor of another
function Plan:check_overlap(ids, what)
  local g = self.g
  for i, a in ipairs(ids) do
    for j, b in ipairs(ids) do
      if i ~= j and a ~= b and g:reaches(a, b) then
        fail("%s %s and %s are on one line of descent (%s needs %s)", what, b, a, a, b)
      end
    end
  end
end

-- upgrade_steps(current, targets) -> the ids to apply, parents first: what the targets need that the database lacks
function Plan:upgrade_steps(current, targets)
  local g = self.g
  self:check_overlap(targets, "the targets")
  self:check_overlap(current, "the database's version rows")
  local todo = g:ancestors(targets)
  if #current > 0 then
    for id in pairs(g:ancestors(current)) do todo[id] = nil end
  end
  local out = g:topo_sort(todo, targets)
  local n = #out
  for i = 1, n // 2 do out[i], out[n + 1 - i] = out[n + 1 - i], out[i] end
  return out
end

-- downgrade_steps(current, target, label) -> the ids to revert, children first: what descends from (or depends on)
-- the target's children, or every base for BASE, and the database has; with a label and several such children,
-- only those below the branch's revision
function Plan:downgrade_steps(current, target, label)
  local g = self.g
  local roots, nroots
  if target == BASE then
    roots = g:bases()
    -- Alembic counts a labelled base once more for each of its labels
    nroots = #roots
    for _, r in pairs(g.labels) do if #r.down_revisions == 0 then nroots = nroots + 1 end end
  else
    roots = g.children[target.revision] or {}
    nroots = #roots
  end
  if label and nroots > 1 then
    local below = g:ancestors({ self:resolve_branch(label).revision }, true)
    local keep = {}
    for _, c in ipairs(unique(roots)) do if below[c] then keep[#keep + 1] = c end end
    if #keep == 0 then
      fail("%s is not a valid downgrade target on branch '%s'", target == BASE and "base" or target.revision, label)
    end
    roots = keep
  end
  for _, h in ipairs(current) do self:for_ident(h) end
  local active = g:ancestors(current)
  local todo, n = {}, 0
  for id in pairs(g:descendants(roots)) do
    if active[id] then
      todo[id] = true
      n = n + 1
    end
  end
  if target ~= BASE and n == 0 then
    local at = false
    for _, h in ipairs(current) do if h == target.revision then at = true end end
    if not at then
      fail("Destination %s is not a valid downgrade target from the current revision(s) %s", target.revision,
        #current == 0 and "<base>" or concat(sorted(current), ", "))
    end
  end
  return g:topo_sort(todo, current)
end

-- The version rows each step or stamp leaves (luamig.version_rows: Alembic's HeadMaintainer)
require("luamig.version_rows").install(Plan, { fail = fail, sorted = sorted, keys = keys, unique = unique })

-- The public face: each returns its result, or nil, message (a failure of the target or the plan).
local PUBLIC = { "upgrade_targets", "downgrade_target", "upgrade_steps", "downgrade_steps", "revisions", "stamp_rows",
  "for_ident" }

-- planner(graph) -> an object with the protected methods of PUBLIC (for_ident as ident), and rows_after(rows, id,
-- direction) (nil when the step does not fit the rows); made once per graph, its methods are plain closures
local function planner(graph)
  local p = new(graph)
  local pub = {}
  for _, name in ipairs(PUBLIC) do
    local f = Plan[name]
    pub[name == "for_ident" and "ident" or name] = function(_, ...) return protect(f, p, ...) end
  end
  pub.rows_after = function(_, ...) return p:rows_after(...) end
  return pub
end

return { planner = planner }
