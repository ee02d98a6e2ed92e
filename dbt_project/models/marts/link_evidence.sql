{{ config(materialized='view') }}
-- What each comparison contributed to a pair the match model scored (a link, a review item, or a candidate another
-- decision set aside): a waterfall from the prior to the pair's match weight, one row per comparison and one for
-- the prior. A deterministic link (carried id, the same valid email) has no score and no rows here. A view: each
-- pair keeps its levels in int_link_candidates, the weights stay with the model version that scored it
-- (comparison_levels). The published databases hold the same view over their copies of the two
-- (macros/matching/evidence.sql).
{{ idlink.link_evidence_rows(
    idlink.scored_pairs(ref('int_link_candidates')),
    'select * from ' ~ ref('comparison_levels')) }}
