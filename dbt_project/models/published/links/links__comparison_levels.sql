-- What each level of each comparison is worth in each trained model version (no personal field).
select * from {{ ref('comparison_levels') }}
