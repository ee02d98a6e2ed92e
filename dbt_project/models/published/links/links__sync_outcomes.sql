-- Every write the reverse ETL attempted and what the system answered: keys, error codes and idlink's own
-- explanation (never the remote system's message, which may quote a value).
with

log as (
    {{ idlink.typed_columns_from(source('reverse_etl', 'sync_log'), idlink.sync_log_columns()) }}
),

final as (
    select run_id, system, operation, record_key, outcome, error_code, error_message, attempt, logged_at
    from log
)

select * from final
