-- One row per pair the match model scored, with each comparison's level as a small integer (its name and weight
-- in comparison_levels): the compact form of link_evidence (keys, levels and weights; no personal field).
{{ idlink.scored_pairs(ref('int_link_candidates')) }}
