return { revision = 'bb:02', down_revision = 'aaaa00000001', upgrade = function() end, downgrade = function() end }
