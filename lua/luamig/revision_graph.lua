-- The revision graph (Alembic's RevisionMap): takes revision records in, does no I/O. It validates the graph
-- (duplicate ids, unknown parents or dependencies, self-loops, cycles, duplicate branch labels), knows heads and
-- bases, resolves ids and prefixes, and plans the steps between two sets of heads.
local format, concat, sort, ipairs, pairs, type = string.format, table.concat, table.sort, ipairs, pairs, type

local Graph = {}
Graph.__index = Graph

local function files_of(revs)
  local out = {}
  for i, r in ipairs(revs) do out[i] = r.shown or r.revision end
  return concat(out, ", ")
end

-- new(records) -> graph, or nil, message naming the files involved
-- A record needs revision and down_revisions; branch_labels, depends_on and shown (its file) are optional.
local function new(records)
  local g = setmetatable({ by_id = {}, list = {}, children = {}, labels = {}, order = {} }, Graph)
  for _, r in ipairs(records) do
    local prev = g.by_id[r.revision]
    if prev then
      return nil, format("revision %s is defined twice: in %s and in %s", r.revision, prev.shown or "?", r.shown or "?")
    end
    g.by_id[r.revision] = r
    g.list[#g.list + 1] = r
    r.down_revisions = r.down_revisions or {}
    r.depends_on = r.depends_on or {}
    r.branch_labels = r.branch_labels or {}
  end
  for _, r in ipairs(g.list) do
    for _, d in ipairs(r.down_revisions) do
      if d == r.revision then
        return nil, format("%s: revision %s names itself as its down_revision", r.shown or r.revision, r.revision)
      end
      if not g.by_id[d] then
        return nil, format("%s: down_revision '%s' of revision %s is not a known revision", r.shown or r.revision, d, r.revision)
      end
      local ch = g.children[d]
      if not ch then
        ch = {}
        g.children[d] = ch
      end
      ch[#ch + 1] = r.revision
    end
    for _, d in ipairs(r.depends_on) do
      if d == r.revision then
        return nil, format("%s: revision %s depends on itself", r.shown or r.revision, r.revision)
      end
      if not g.by_id[d] and not g.labels[d] then
        -- labels are checked below, after they are all known
        r._pending_dep = true
      end
    end
    for _, l in ipairs(r.branch_labels) do
      local other = g.labels[l]
      if other then
        return nil, format("branch label '%s' is used by both %s and %s", l, other.shown or other.revision, r.shown or r.revision)
      end
      g.labels[l] = r
    end
  end
  for _, r in ipairs(g.list) do
    if r._pending_dep then
      for _, d in ipairs(r.depends_on) do
        if not g.by_id[d] and not g.labels[d] then
          return nil, format("%s: depends_on '%s' of revision %s is not a known revision or branch label", r.shown or r.revision, d, r.revision)
        end
      end
      r._pending_dep = nil
    end
  end
  -- Topological order over down_revision and depends_on edges (Kahn); what is left over is in a cycle.
  local indeg, deps_of = {}, {}
  local dependents = {}
  for _, r in ipairs(g.list) do
    local parents = {}
    for _, d in ipairs(r.down_revisions) do parents[#parents + 1] = d end
    for _, d in ipairs(r.depends_on) do
      local t = g.by_id[d] or g.labels[d]
      parents[#parents + 1] = t.revision
    end
    deps_of[r.revision] = parents
    indeg[r.revision] = #parents
    for _, p in ipairs(parents) do
      local l = dependents[p]
      if not l then
        l = {}
        dependents[p] = l
      end
      l[#l + 1] = r.revision
    end
  end
  local queue, qh = {}, 1
  for _, r in ipairs(g.list) do
    if indeg[r.revision] == 0 then queue[#queue + 1] = r.revision end
  end
  while qh <= #queue do
    local id = queue[qh]
    qh = qh + 1
    g.order[#g.order + 1] = id
    g.by_id[id].index = #g.order
    for _, c in ipairs(dependents[id] or {}) do
      indeg[c] = indeg[c] - 1
      if indeg[c] == 0 then queue[#queue + 1] = c end
    end
  end
  if #g.order < #g.list then
    local stuck = {}
    for _, r in ipairs(g.list) do
      if indeg[r.revision] > 0 then stuck[#stuck + 1] = r end
    end
    sort(stuck, function(a, b) return a.revision < b.revision end)
    return nil, format("the revisions %s form a cycle (files: %s)", (function()
      local ids = {}
      for i, r in ipairs(stuck) do ids[i] = r.revision end
      return concat(ids, ", ")
    end)(), files_of(stuck))
  end
  g.parents = deps_of
  -- Heads have no children by down_revision; bases have no down_revision.
  g.head_list, g.base_list = {}, {}
  for _, id in ipairs(g.order) do
    if not g.children[id] then g.head_list[#g.head_list + 1] = id end
    if #g.by_id[id].down_revisions == 0 then g.base_list[#g.base_list + 1] = id end
  end
  return g
end

function Graph:get(id)
  return self.by_id[id]
end

function Graph:heads()
  return self.head_list
end

function Graph:bases()
  return self.base_list
end

function Graph:count()
  return #self.order
end

-- resolve_id(s) -> revision record, or nil, message: a full id, a branch label, or a unique prefix of >= 4 characters.
function Graph:resolve_id(s)
  local r = self.by_id[s]
  if r then return r end
  if #s < 4 then
    return nil, format("No such revision or branch '%s'; a partial revision id needs at least four characters", s)
  end
  local found = {}
  for _, id in ipairs(self.order) do
    if id:sub(1, #s) == s then found[#found + 1] = id end
  end
  if #found == 1 then return self.by_id[found[1]] end
  if #found > 1 then
    sort(found)
    return nil, format("Multiple revisions start with '%s': %s", s, concat(found, ", "))
  end
  return nil, format("No such revision or branch '%s'", s)
end

-- ancestors(ids) -> set of every revision reachable from ids through down_revision and depends_on, ids included
function Graph:ancestors(ids)
  local seen, stack = {}, {}
  for _, id in ipairs(ids) do stack[#stack + 1] = id end
  while #stack > 0 do
    local id = stack[#stack]
    stack[#stack] = nil
    if not seen[id] then
      seen[id] = true
      for _, p in ipairs(self.parents[id] or {}) do
        if not seen[p] then stack[#stack + 1] = p end
      end
    end
  end
  return seen
end

local function by_index(self, asc)
  return function(a, b)
    if asc then return self.by_id[a].index < self.by_id[b].index end
    return self.by_id[a].index > self.by_id[b].index
  end
end

-- plan_upgrade(current, target) -> ids to apply, parents first: the target's ancestors the database lacks.
function Graph:plan_upgrade(current, target)
  local have = self:ancestors(current)
  local want = self:ancestors(target)
  local steps = {}
  for id in pairs(want) do
    if not have[id] then steps[#steps + 1] = id end
  end
  sort(steps, by_index(self, true))
  return steps
end

-- plan_downgrade(current, target) -> ids to revert, children first: what the database has beyond the target.
function Graph:plan_downgrade(current, target)
  local have = self:ancestors(current)
  local keep = self:ancestors(target)
  local steps = {}
  for id in pairs(have) do
    if not keep[id] then steps[#steps + 1] = id end
  end
  sort(steps, by_index(self, false))
  return steps
end

-- heads_after(heads, id, direction) -> the version rows after applying ("upgrade") or reverting ("downgrade") id.
function Graph:heads_after(heads, id, direction)
  local r = self.by_id[id]
  local out = {}
  if direction == "upgrade" then
    -- id replaces whatever it descends from; when every head is a direct parent (a linear step) that is all of them
    local direct = {}
    for _, p in ipairs(self.parents[id]) do direct[p] = true end
    local all_direct = true
    for _, h in ipairs(heads) do
      if not direct[h] then
        all_direct = false
        break
      end
    end
    if all_direct then return { id } end
    local anc = self:ancestors({ id })
    for _, h in ipairs(heads) do
      if not anc[h] then out[#out + 1] = h end
    end
    out[#out + 1] = id
  else
    local rest = {}
    for _, h in ipairs(heads) do
      if h ~= id then rest[#rest + 1] = h end
    end
    local covered = self:ancestors(rest)
    for _, h in ipairs(rest) do out[#out + 1] = h end
    for _, p in ipairs(r.down_revisions) do
      if not covered[p] then out[#out + 1] = p end
    end
  end
  return out
end

-- Walks n steps from id along children (n > 0) or down_revisions (n < 0). Returns the id reached, "" for
-- "before the base", or nil, message when the walk is ambiguous or runs out.
function Graph:walk(id, n, spec)
  local cur = id
  local steps = n > 0 and n or -n
  for i = 1, steps do
    if n > 0 then
      local kids
      if cur == "" then kids = self.base_list else kids = self.children[cur] or {} end
      if #kids == 0 then
        return nil, format("Relative revision %s didn't produce %d migrations", spec, steps)
      end
      if #kids > 1 then
        local s = {}
        for k, c in ipairs(kids) do s[k] = c end
        sort(s)
        return nil, format("Relative revision %s is ambiguous: %s has %d next revisions (%s); name one", spec,
          cur == "" and "<base>" or cur, #kids, concat(s, ", "))
      end
      cur = kids[1]
    else
      if cur == "" then
        return nil, format("Relative revision %s didn't produce %d migrations", spec, steps)
      end
      local downs = self.by_id[cur].down_revisions
      if #downs == 0 then
        if i < steps then
          return nil, format("Relative revision %s didn't produce %d migrations", spec, steps)
        end
        cur = ""
      elseif #downs > 1 then
        return nil, format("Relative revision %s is ambiguous: %s is a merge of %s", spec, cur, concat(downs, ", "))
      else
        cur = downs[1]
      end
    end
  end
  return cur
end

return { new = new, Graph = Graph }
