{{ config(materialized='incremental') }}
-- One row per build: how many pairs fell in each decision band (deterministic links, links the match model made,
-- review items) and their share of the identities that may be linked. The history lets the check
-- decision_bands_stable compare this build with the one before (a retrained model or a changed source that decides
-- very differently), and analysts plot it. Counts only.
with

links as (
    select match_rule from {{ ref('identity_contact_links') }}
    where status = 'active'
),

eligible as (
    select count(*) as identities
    from {{ ref('int_identities') }} as i
    where {{ idlink.linkable_identity('i') }}
),

counted as (
    select
        (select count(*) from links where match_rule <> 'match_model') as deterministic_links,
        (select count(*) from links where match_rule = 'match_model') as model_links,
        (select count(*) from {{ ref('link_conflicts') }} where reason = 'uncertain_match') as review_items,
        (select identities from eligible) as eligible_identities
),

final as (
    select
        {{ idlink.run_timestamp() }} as built_at,
        cast('{{ invocation_id }}' as {{ dbt.type_string() }}) as invocation_id,
        cast(deterministic_links as bigint) as deterministic_links,
        cast(model_links as bigint) as model_links,
        cast(deterministic_links + model_links as bigint) as auto_links,
        cast(review_items as bigint) as review_items,
        cast(eligible_identities as bigint) as eligible_identities,
        cast((deterministic_links + model_links) as double precision) / nullif(eligible_identities, 0) as auto_link_share,
        cast(review_items as double precision) / nullif(eligible_identities, 0) as review_share
    from counted
)

select * from final
