-- The one audit trail: every write idlink made (or tried) to an outside system, by whom (actor: a Dagster run,
-- the fast lane, the sign-up connector, a command; run_id names which), why (rule: the match rule, consent purpose
-- or erasure policy), with what outcome and when. Keys, hashes and error codes only.
with

log as (
    {{ idlink.typed_columns_from(source('reverse_etl', 'sync_log'), idlink.sync_log_columns()) }}
),

final as (
    select
        logged_at,
        coalesce(actor, 'run') as actor,
        run_id,
        system,
        operation,
        record_key,
        rule,
        outcome,
        error_code,
        error_message,
        attempt,
        payload_hash
    from log
)

select * from final
