-- Every write idlink attempted and what the system answered: who and why (actor, rule), keys, error codes and
-- idlink's own explanation (never the remote system's message, which may quote a value).
with

log as (
    {{ idlink.typed_columns_from(source('reverse_etl', 'sync_log'), idlink.sync_log_columns()) }}
),

final as (
    select logged_at, coalesce(actor, 'run') as actor, run_id, system, operation, record_key, rule, outcome,
        error_code, error_message, attempt
    from log
)

select * from final
