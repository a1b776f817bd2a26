return { revision = 'bbbb00000002', down_revision = 'aaaa00000001', transactional = 'no', upgrade = function() end, downgrade = function() end }
