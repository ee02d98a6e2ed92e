{{ idlink.stg_identity_users('akamai') }}
