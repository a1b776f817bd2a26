SELECT '?' , "?" -- ?
, :name::text