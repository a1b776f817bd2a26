error(setmetatable({}, { __tostring = function() return 'a table error' end }))
