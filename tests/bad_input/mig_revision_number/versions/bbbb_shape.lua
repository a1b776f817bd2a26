return { revision = 42, down_revision = 'aaaa00000001', upgrade = function() end, downgrade = function() end }
