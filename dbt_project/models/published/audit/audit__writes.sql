-- Every write idlink made (or tried) to an outside system: who (run id), what (system, operation, record),
-- the outcome and when. Keys, hashes and error codes only.
with

log as (
    {{ idlink.typed_columns_from(source('reverse_etl', 'sync_log'), idlink.sync_log_columns()) }}
),

final as (
    select run_id, system, operation, record_key, payload_hash, outcome, error_code, error_message, attempt,
        logged_at
    from log
)

select * from final
