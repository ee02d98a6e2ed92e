{{ idlink.stg_identity_users('b2c') }}
