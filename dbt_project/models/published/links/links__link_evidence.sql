-- Why the match model scored each pair as it did, comparison by comparison (keys, levels and weights; no personal
-- field).
select * from {{ ref('link_evidence') }}
