return { revision = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', down_revision = 'aaaa00000001', upgrade = function() end, downgrade = function() end }
