-- The revision graph (Alembic's RevisionMap): takes revision records in, does no I/O.
--
-- It validates the graph (duplicate ids, unknown parents or dependencies, self-loops, cycles, duplicate branch
-- labels), knows heads and bases, spreads branch labels, resolves ids, prefixes and labels, walks relative steps,
-- and plans the steps between two sets of heads in Alembic's order. Every query that Alembic answers with a full
-- ancestor set is answered here by a search pruned by topological index, so large histories stay linear.
local format, concat, sort, ipairs, pairs, type = string.format, table.concat, table.sort, ipairs, pairs, type
local setmetatable, next, error = setmetatable, next, error

local Graph = {}
Graph.__index = Graph

-- Shared by every revision without dependencies or labels; never written to.
local NONE = setmetatable({}, { __newindex = function() error("revision graph: NONE is read-only", 2) end })

local function shown(r) return r.shown or r.revision end

local function files_of(revs)
  local out = {}
  for i, r in ipairs(revs) do out[i] = shown(r) end
  return concat(out, ", ")
end

local function push(t, k, v)
  local l = t[k]
  if not l then
    l = {}
    t[k] = l
  end
  l[#l + 1] = v
end

-- new(records) -> graph, or nil, message naming the files involved
-- A record needs revision and down_revisions; branch_labels, depends_on and shown (its file) are optional.
local function new(records)
  local by_id, list, children, dependents, parents, labels, order = {}, {}, {}, {}, {}, {}, {}
  local g = setmetatable({ by_id = by_id, list = list, children = children, dependents = dependents,
    parents = parents, labels = labels, order = order }, Graph)
  local any_labels = false
  for i, r in ipairs(records) do
    local id = r.revision
    local prev = by_id[id]
    if prev then
      return nil, format("revision %s is defined twice: in %s and in %s", id, shown(prev), shown(r))
    end
    if not r.down_revisions then r.down_revisions = {} end
    if not r.depends_on then r.depends_on = {} end
    local bl = r.branch_labels
    if not bl then
      r.branch_labels = {}
    elseif #bl > 0 then
      any_labels = true
    end
    r.load_index = i
    by_id[id] = r
    list[i] = r
  end
  if any_labels then
    for _, r in ipairs(list) do
      for _, l in ipairs(r.branch_labels) do
        local other = labels[l]
        if other then
          return nil, format("branch label '%s' is used by both %s and %s", l, shown(other), shown(r))
        end
        if by_id[l] then
          return nil, format("%s: branch label '%s' is also a revision id", shown(r), l)
        end
        labels[l] = r
      end
    end
  end
  -- Topological order over down_revision and depends_on edges (Kahn); what is left over is in a cycle.
  local indeg = {}
  local queue, nq = {}, 0
  for _, r in ipairs(list) do
    local id = r.revision
    local downs = r.down_revisions
    for _, d in ipairs(downs) do
      if d == id then
        return nil, format("%s: revision %s names itself as its down_revision", shown(r), id)
      end
      if not by_id[d] then
        return nil, format("%s: down_revision '%s' of revision %s is not a known revision", shown(r), d, id)
      end
      local kids = children[d]
      if kids then kids[#kids + 1] = id else children[d] = { id } end
    end
    local ps = downs
    if #r.depends_on == 0 then
      -- the common case: the parents are the down_revisions
      r.dependencies = NONE
    else
      local deps = {}
      ps = {}
      for _, d in ipairs(downs) do ps[#ps + 1] = d end
      for _, d in ipairs(r.depends_on) do
        local t = by_id[d] or labels[d]
        if not t then
          return nil, format("%s: depends_on '%s' of revision %s is not a known revision or branch label", shown(r), d, id)
        end
        if t == r then return nil, format("%s: revision %s depends on itself", shown(r), id) end
        deps[#deps + 1] = t.revision
        push(dependents, t.revision, id)
        ps[#ps + 1] = t.revision
      end
      r.dependencies = deps
    end
    parents[id] = ps
    local n = #ps
    indeg[id] = n
    if n == 0 then
      nq = nq + 1
      queue[nq] = id
    end
  end
  -- release(kids): one parent of each is placed; those with none left join the queue
  local function release(kids)
    for _, c in ipairs(kids) do
      local k = indeg[c] - 1
      indeg[c] = k
      if k == 0 then
        nq = nq + 1
        queue[nq] = c
      end
    end
  end
  local qh, no = 1, 0
  while qh <= nq do
    local id = queue[qh]
    qh = qh + 1
    no = no + 1
    order[no] = id
    by_id[id].index = no
    local kids = children[id]
    if kids then release(kids) end
    kids = dependents[id]
    if kids then release(kids) end
  end
  if no < #list then
    local stuck = {}
    for _, r in ipairs(list) do
      if indeg[r.revision] > 0 then stuck[#stuck + 1] = r end
    end
    sort(stuck, function(a, b) return a.revision < b.revision end)
    local ids = {}
    for i, r in ipairs(stuck) do ids[i] = r.revision end
    local dep_loop = false
    for _, r in ipairs(stuck) do if #r.dependencies > 0 then dep_loop = true end end
    return nil, format("the revisions %s form a %s (files: %s)", concat(ids, ", "),
      dep_loop and "dependency cycle" or "cycle", files_of(stuck))
  end
  -- Heads have no children by down_revision; bases have no down_revision. Both in load order.
  -- Real heads are heads nothing depends on either (what `heads` stands for, as in Alembic).
  local head_list, base_list, real_heads = {}, {}, {}
  g.head_list, g.base_list, g.real_head_list = head_list, base_list, real_heads
  for _, r in ipairs(list) do
    if not children[r.revision] then
      head_list[#head_list + 1] = r.revision
      if not dependents[r.revision] then real_heads[#real_heads + 1] = r.revision end
    end
    if #r.down_revisions == 0 then base_list[#base_list + 1] = r.revision end
  end
  g:spread_labels()
  return g
end

function Graph:get(id) return self.by_id[id] end
function Graph:heads() return self.head_list end
function Graph:real_heads() return self.real_head_list end
function Graph:bases() return self.base_list end
function Graph:count() return #self.order end

function Graph:is_branch_point(id) return #(self.children[id] or {}) > 1 end
function Graph:is_merge_point(id) return #self.by_id[id].down_revisions > 1 end

-- Branch labels spread to every descendant by down_revision and to the ancestors of the labelled revision down to
-- (not including) the nearest branch point or merge point, as Alembic does. r.all_labels lists them sorted.
function Graph:spread_labels()
  if next(self.labels) == nil then
    for _, r in ipairs(self.list) do r.all_labels = NONE end
    return
  end
  local sets = {}
  local function add(id, l)
    local s = sets[id]
    if not s then
      s = {}
      sets[id] = s
    end
    s[l] = true
  end
  for l, r in pairs(self.labels) do
    local stack, seen = { r.revision }, {}
    while #stack > 0 do
      local id = stack[#stack]
      stack[#stack] = nil
      if not seen[id] then
        seen[id] = true
        add(id, l)
        for _, c in ipairs(self.children[id] or {}) do stack[#stack + 1] = c end
      end
    end
    local cur = r
    while #cur.down_revisions == 1 do
      local p = self.by_id[cur.down_revisions[1]]
      if self:is_branch_point(p.revision) or self:is_merge_point(p.revision) then break end
      add(p.revision, l)
      cur = p
    end
  end
  for _, r in ipairs(self.list) do
    local set = sets[r.revision]
    if set then
      local out = {}
      for l in pairs(set) do out[#out + 1] = l end
      sort(out)
      r.all_labels = out
    else
      r.all_labels = NONE
    end
  end
end

-- reaches(from, to [, within [, versioned]]) -> true when `to` is `from` or one of its ancestors (through
-- down_revision and depends_on; through down_revision only when versioned). The search never goes below to's
-- topological index; `within` restricts it to a set of ids.
function Graph:reaches(from, to, within, versioned)
  if from == to then return true end
  local limit = self.by_id[to].index
  local stack, seen = { from }, { [from] = true }
  local parents, by_id = self.parents, self.by_id
  while #stack > 0 do
    local id = stack[#stack]
    stack[#stack] = nil
    for _, p in ipairs(versioned and by_id[id].down_revisions or parents[id]) do
      if p == to then return true end
      if not seen[p] and by_id[p].index > limit and (not within or within[p]) then
        seen[p] = true
        stack[#stack + 1] = p
      end
    end
  end
  return false
end

-- shares_lineage(a, b [, versioned]) -> true when a is b, an ancestor of b or a descendant of b (by down_revision
-- only when versioned, as Alembic's branch membership is)
function Graph:shares_lineage(a, b, versioned)
  local ia, ib = self.by_id[a].index, self.by_id[b].index
  if ia >= ib then return self:reaches(a, b, nil, versioned) end
  return self:reaches(b, a, nil, versioned)
end

-- ancestors(ids [, versioned]) -> set of every revision reachable from ids through down_revision and depends_on
-- (down_revision only when versioned), ids included
function Graph:ancestors(ids, versioned)
  local seen, stack = {}, {}
  local by_id, parents = self.by_id, self.parents
  for _, id in ipairs(ids) do stack[#stack + 1] = id end
  while #stack > 0 do
    local id = stack[#stack]
    stack[#stack] = nil
    if not seen[id] then
      seen[id] = true
      for _, p in ipairs(versioned and by_id[id].down_revisions or parents[id]) do
        if not seen[p] then stack[#stack + 1] = p end
      end
    end
  end
  return seen
end

-- descendants(ids [, versioned]) -> set of ids and everything that descends from them or depends on them (only
-- what descends by down_revision when versioned)
function Graph:descendants(ids, versioned)
  local seen, stack = {}, {}
  for _, id in ipairs(ids) do stack[#stack + 1] = id end
  while #stack > 0 do
    local id = stack[#stack]
    stack[#stack] = nil
    if not seen[id] then
      seen[id] = true
      local kids = self.children[id]
      if kids then
        for _, c in ipairs(kids) do
          if not seen[c] then stack[#stack + 1] = c end
        end
      end
      kids = not versioned and self.dependents[id]
      if kids then
        for _, c in ipairs(kids) do
          if not seen[c] then stack[#stack + 1] = c end
        end
      end
    end
  end
  return seen
end

-- walk_parents(id) -> a revision's down_revisions, then those of its dependencies that no ancestor by down_revision
-- already depends on (Alembic's normalized down revisions): the parents that topo_sort walks and that a step's
-- version rows move from.
function Graph:walk_parents(id)
  local r = self.by_id[id]
  if r.dependencies == NONE then return r.down_revisions end
  if r._walk_parents then return r._walk_parents end
  local inherited = {}
  for a in pairs(self:ancestors(r.down_revisions, true)) do
    for _, d in ipairs(self.by_id[a].dependencies) do inherited[d] = true end
  end
  local out, seen = {}, {}
  for _, d in ipairs(r.down_revisions) do
    out[#out + 1] = d
    seen[d] = true
  end
  for _, d in ipairs(r.dependencies) do
    if not inherited[d] and not seen[d] then
      out[#out + 1] = d
      seen[d] = true
    end
  end
  r._walk_parents = out
  return out
end

-- topo_sort(todo, heads) -> the ids of the set todo, children before parents, in Alembic's order: walk down from
-- the first head and keep to its line until a revision is still needed by another head's line, then switch to the
-- first such head. Upgrades apply the reverse of this list.
function Graph:topo_sort(todo, heads)
  local by_id, parents = self.by_id, self.parents
  local pending = {}
  local count = 0
  for id in pairs(todo) do
    count = count + 1
    for _, p in ipairs(parents[id]) do
      if todo[p] then pending[p] = (pending[p] or 0) + 1 end
    end
  end
  local current, in_current = {}, {}
  for _, h in ipairs(heads) do
    if todo[h] and not in_current[h] then
      current[#current + 1] = h
      in_current[h] = true
    end
  end
  sort(current, function(a, b) return by_id[a].load_index < by_id[b].load_index end)
  local out, emitted = {}, {}
  local idx = 1
  while #current > 0 do
    local cand = current[idx]
    local switched = false
    if (pending[cand] or 0) > 0 then
      for j, h in ipairs(current) do
        if j ~= idx and self:reaches(h, cand, todo) then
          idx = j
          switched = true
          break
        end
      end
      if not switched then error("revision graph: no head leads to " .. cand, 0) end
    end
    if not switched then
      if not emitted[cand] then
        out[#out + 1] = cand
        emitted[cand] = true
        for _, p in ipairs(parents[cand]) do
          if todo[p] then pending[p] = pending[p] - 1 end
        end
      end
      local add = {}
      for _, p in ipairs(self:walk_parents(cand)) do
        if todo[p] and not in_current[p] then add[#add + 1] = p end
      end
      in_current[cand] = nil
      if #add == 0 then
        table.remove(current, idx)
        idx = idx > 1 and idx - 1 or 1
      else
        current[idx] = add[1]
        in_current[add[1]] = true
        for k = 2, #add do
          current[#current + 1] = add[k]
          in_current[add[k]] = true
        end
      end
    end
  end
  if #out ~= count then error("revision graph: topological walk missed revisions", 0) end
  return out
end

local function reversed(t)
  local out = {}
  for i = #t, 1, -1 do out[#out + 1] = t[i] end
  return out
end

-- plan_upgrade(current, targets) -> ids to apply, parents first: what the targets need that the database lacks.
function Graph:plan_upgrade(current, targets)
  local todo = self:ancestors(targets)
  if #current > 0 then
    for id in pairs(self:ancestors(current)) do todo[id] = nil end
  end
  return reversed(self:topo_sort(todo, targets))
end

-- heads_after(heads, id, direction) -> the version rows after applying ("upgrade") or reverting ("downgrade") id.
function Graph:heads_after(heads, id, direction)
  local downs = self.by_id[id].down_revisions
  if #heads == 1 and #downs == 1 and self.by_id[id].dependencies == NONE then
    -- a step along one line: the row moves from the parent to the child, or back
    if direction == "upgrade" and heads[1] == downs[1] then return { id } end
    if direction == "downgrade" and heads[1] == id then return { downs[1] } end
  end
  local out = {}
  if direction == "upgrade" then
    -- id replaces every head it descends from (a depended-on head included)
    for _, h in ipairs(heads) do
      if not self:reaches(id, h) then out[#out + 1] = h end
    end
    out[#out + 1] = id
  else
    local rest = {}
    for _, h in ipairs(heads) do
      if h ~= id then rest[#rest + 1] = h end
    end
    for _, h in ipairs(rest) do out[#out + 1] = h end
    for _, p in ipairs(self.by_id[id].down_revisions) do
      local covered = false
      for _, h in ipairs(rest) do
        if self:reaches(h, p) then
          covered = true
          break
        end
      end
      if not covered then out[#out + 1] = p end
    end
  end
  sort(out)
  return out
end

-- effective_heads() -> the heads that are not depended on by another head: the version rows of a database at heads
function Graph:effective_heads()
  local out = {}
  for _, h in ipairs(self.head_list) do
    local covered = false
    for _, o in ipairs(self.head_list) do
      if o ~= h and self:reaches(o, h) then
        covered = true
        break
      end
    end
    if not covered then out[#out + 1] = h end
  end
  sort(out)
  return out
end

-- range(lower, upper) -> ids between two points, newest first, both ends included (history -r): upper's ancestors
-- that descend from lower. lower = nil means base, upper = nil means every head.
function Graph:range(lower, upper)
  local tops = upper or self.head_list
  local want = self:ancestors(tops)
  if lower then
    local below = self:descendants(lower)
    for id in pairs(want) do
      if not below[id] then want[id] = nil end
    end
  end
  return self:topo_sort(want, tops)
end

return { new = new, Graph = Graph }
