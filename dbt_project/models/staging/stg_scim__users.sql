{{ idlink.stg_identity_users('scim') }}
