-- One row per (identity, contact) pair some match rule proposes: its strongest accepting rule, or the veto of
-- a stronger rule that found the pair and rejected it (rejected_reason set; never linked).
with

candidate_rows as (
    {{ idlink.match_candidates(ref('int_identities'), ref('int_contacts')) }}
),

ranked as (
    select
        candidate_rows.*,
        row_number() over (
            partition by identity_provider, identity_id, crm, contact_id
            -- at equal rank a veto wins: a rule that sees a family mailbox must not be outvoted by itself
            order by rule_rank, case when rejected_reason is null then 1 else 0 end, match_confidence desc
        ) as pair_rank
    from candidate_rows
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
        rejected_reason
    from ranked
    where pair_rank = 1
)

select * from final
