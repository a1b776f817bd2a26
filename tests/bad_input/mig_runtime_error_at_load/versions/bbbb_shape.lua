local cfg = nil
local v = cfg.value
return {}
