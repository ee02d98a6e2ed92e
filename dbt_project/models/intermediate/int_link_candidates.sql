-- One row per (identity, contact) pair some match rule proposes: its strongest emitting rule, which either
-- accepts the pair or vetoes it (rejected_reason set; never linked), and what the assignment orders pairs by.
with

{{ idlink.candidate_pair_ctes(ref('int_identities'), ref('int_contacts')) }},

candidate_rows as (
    {{ idlink.match_candidates('candidate_pairs') }}
),

final as (
    select
        identity_provider,
        identity_id,
        crm,
        contact_id,
        match_rule,
        rule_rank,
        match_confidence,
        on_tie,
        rejected_reason,
        {{ idlink.pair_context() | map(attribute='name') | join(',\n        ') }}
    from candidate_rows
)

select * from final
