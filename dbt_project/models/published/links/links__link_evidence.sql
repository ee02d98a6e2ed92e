{{ config(materialized='published_view') }}
-- Why the match model scored each pair as it did, comparison by comparison: a view of the published database over
-- its link_scores and comparison_levels (keys, levels and weights; no personal field).
-- depends_on: {{ ref('links__link_scores') }}, {{ ref('links__comparison_levels') }}
{{ idlink.link_evidence_rows(
    'select * from links.link_scores',
    'select * from links.comparison_levels',
    carried=['published_run_id', 'published_at']) }}
