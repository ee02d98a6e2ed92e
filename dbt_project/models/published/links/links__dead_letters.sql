-- Records that failed for good (retried no more until their payload changes or they are replayed).
with

dead as (
    {{ idlink.typed_columns_from(source('reverse_etl', 'dead_letters'), idlink.dead_letter_columns()) }}
),

final as (
    select system, record_key, error_code, error_message, attempts, first_failed_at, last_failed_at
    from dead
)

select * from final
