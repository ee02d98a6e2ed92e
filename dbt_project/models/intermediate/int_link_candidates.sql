{{ config(pre_hook="{{ idlink.ensure_match_model() }}") }}
-- One row per (identity, contact) pair worth a decision: settled by a deterministic rule (a steward's link, carried
-- id, the same valid email), or scored by the match model at least in the review band. Pairs are found by blocking, compared field
-- by field and scored with the parameters training learned from this warehouse (macros/matching/), in passes:
--   rules    the deterministic rules' keys; a pair a rule settles needs no score
--   first    the keys of var match_blocking, for every identity and the contacts no rule settled (a settled
--            contact cannot go to anyone else)
--   second   the broader keys of var match_blocking_unmatched, for the contacts the passes before found no likely
--            identity for (a contact of someone already linked may be a CRM duplicate: every identity takes part)
-- A pair a steward said never to link (or unlinked) takes part in no pass (int_link_decisions).
with

{{ idlink.side_ctes(ref('int_identities'), ref('int_contacts')) }},

{{ idlink.model_parameter_ctes() }},

{{ idlink.term_frequency_ctes() }},

{{ idlink.never_linked_pair_rows_cte() }},

{{ idlink.paired_rows_ctes('rule_', 'identity_side', 'contact_side', idlink.rule_keys(),
                           excluded=['never_linked_pair_rows']) }},

{{ idlink.compared_pair_ctes('rule_', 'rule_paired_rows') }},

settled_contact_rows as (
    select distinct contact_row from rule_compared_pairs where settled_rule is not null
),

open_contact_side as {{ idlink.inlined_cte() }} (
    select c.* from contact_side as c
    where not exists (select 1 from settled_contact_rows as s where s.contact_row = c.pair_row)
),

{{ idlink.paired_rows_ctes('first_', 'identity_side', 'open_contact_side', var('match_blocking'),
                           excluded=['never_linked_pair_rows', 'rule_pair_rows']) }},

{{ idlink.compared_pair_ctes('first_', 'first_paired_rows') }},

first_pass_pairs as (
    select * from rule_compared_pairs
    union all
    select * from first_compared_pairs
),

{{ idlink.decided_pair_ctes('first_', 'first_pass_pairs') }},

-- contacts the passes so far found a likely identity for: a rule settled them, or the model links them
matched_contact_rows as (
    select distinct contact_row from first_decided_pairs where decision = 'link'
),

unmatched_contact_side as {{ idlink.inlined_cte() }} (
    select c.* from open_contact_side as c
    where not exists (select 1 from matched_contact_rows as m where m.contact_row = c.pair_row)
),

{{ idlink.paired_rows_ctes('second_', 'identity_side', 'unmatched_contact_side',
                           var('match_blocking_unmatched'), excluded=['never_linked_pair_rows', 'rule_pair_rows', 'first_pair_rows']) }},

{{ idlink.compared_pair_ctes('second_', 'second_paired_rows') }},

{{ idlink.decided_pair_ctes('second_', 'second_compared_pairs') }},

final as (
    select * from first_decided_pairs
    union all
    select * from second_decided_pairs
)

select {{ idlink.candidate_columns() | join(', ') }} from final
