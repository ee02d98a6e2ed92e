{# Run at the start of every dbt invocation (on-run-start): what an engine needs before any model runs. DuckDB has
   all of it built in. #}
{% macro engine_setup() -%}
    {{ return(adapter.dispatch('engine_setup', 'idlink')()) }}
{%- endmacro %}

{% macro default__engine_setup() -%}
    select 1
{%- endmacro %}

{# Postgres: the extension for edit distance, and the two measures it lacks (Jaro-Winkler and a
   Damerau-Levenshtein distance) as functions computing exactly what DuckDB's built-ins compute, so the same
   thresholds link the same people on both engines. #}
{% macro postgres__engine_setup() -%}
    create extension if not exists fuzzystrmatch;
    {{ idlink.postgres_jaro_winkler_function() }};
    {{ idlink.postgres_damerau_levenshtein_function() }}
{%- endmacro %}

{# Jaro-Winkler as DuckDB computes it, over the bytes of the UTF-8 text: bytes match each other within half the
   longer length less one; jaro = (m/|a| + m/|b| + (m - t/2)/m) / 3 with t the matched bytes out of order (t/2
   rounded down); above 0.7 a common prefix of up to 4 bytes adds 0.1 per byte of the rest. An empty string is 0. #}
{% macro postgres_jaro_winkler_function() -%}
    create or replace function {{ target.schema }}.idlink_jaro_winkler(a text, b text)
    returns double precision language plpgsql immutable strict parallel safe as $body$
    declare
        a_bytes bytea := convert_to(a, 'UTF8');  -- the parameters keep their names: a replaced function may not rename them
        b_bytes bytea := convert_to(b, 'UTF8');
        la int := octet_length(convert_to(a, 'UTF8'));
        lb int := octet_length(convert_to(b, 'UTF8'));
        reach int;
        taken boolean[];
        order_a int[] := '{}';
        m int := 0;
        t int := 0;
        k int := 0;
        prefix int := 0;
        jaro double precision;
    begin
        if la = 0 or lb = 0 then
            return 0.0;
        end if;
        reach := greatest(greatest(la, lb) / 2 - 1, 0);
        taken := array_fill(false, array[lb]);
        for i in 0..la - 1 loop
            for j in greatest(0, i - reach)..least(lb - 1, i + reach) loop
                if not taken[j + 1] and get_byte(a_bytes, i) = get_byte(b_bytes, j) then
                    taken[j + 1] := true;
                    order_a := order_a || get_byte(a_bytes, i);
                    m := m + 1;
                    exit;
                end if;
            end loop;
        end loop;
        if m = 0 then
            return 0.0;
        end if;
        for j in 0..lb - 1 loop
            if taken[j + 1] then
                k := k + 1;
                if order_a[k] <> get_byte(b_bytes, j) then
                    t := t + 1;
                end if;
            end if;
        end loop;
        jaro := (m::double precision / la + m::double precision / lb + (m - t / 2)::double precision / m) / 3.0;
        if jaro <= 0.7 then
            return jaro;
        end if;
        while prefix < least(4, la, lb) and get_byte(a_bytes, prefix) = get_byte(b_bytes, prefix) loop
            prefix := prefix + 1;
        end loop;
        return jaro + 0.1 * prefix * (1.0 - jaro);
    end
    $body$
{%- endmacro %}

{# Damerau-Levenshtein distance as DuckDB computes it, over the bytes of the UTF-8 text (insertions, deletions,
   substitutions and transpositions of neighbours, each one edit; unrestricted: a transposed pair may be edited
   again). #}
{% macro postgres_damerau_levenshtein_function() -%}
    create or replace function {{ target.schema }}.idlink_damerau_levenshtein(a text, b text)
    returns int language plpgsql immutable strict parallel safe as $body$
    declare
        a_bytes bytea := convert_to(a, 'UTF8');  -- the parameters keep their names: a replaced function may not rename them
        b_bytes bytea := convert_to(b, 'UTF8');
        la int := octet_length(convert_to(a, 'UTF8'));
        lb int := octet_length(convert_to(b, 'UTF8'));
        w int;
        big int;
        d int[];
        last_row int[] := array_fill(0, array[256]);
        last_col int;
        i2 int;
        j2 int;
        cost int;
    begin
        if la = 0 then return lb; end if;
        if lb = 0 then return la; end if;
        w := lb + 2;
        big := la + lb;
        -- (la + 2) x (lb + 2) matrix, row-major, 1-based, bordered by "infinity" (Lowrance-Wagner)
        d := array_fill(0, array[(la + 2) * w]);
        d[1] := big;
        for i in 0..la loop d[(i + 1) * w + 1] := big; d[(i + 1) * w + 2] := i; end loop;
        for j in 0..lb loop d[j + 2] := big; d[w + j + 2] := j; end loop;
        for i in 1..la loop
            last_col := 0;
            for j in 1..lb loop
                i2 := last_row[get_byte(b_bytes, j - 1) + 1];
                j2 := last_col;
                if get_byte(a_bytes, i - 1) = get_byte(b_bytes, j - 1) then
                    cost := 0;
                    last_col := j;
                else
                    cost := 1;
                end if;
                d[(i + 1) * w + j + 2] := least(
                    d[i * w + j + 1] + cost,
                    d[(i + 1) * w + j + 1] + 1,
                    d[i * w + j + 2] + 1,
                    d[i2 * w + j2 + 1] + (i - i2 - 1) + 1 + (j - j2 - 1));
            end loop;
            last_row[get_byte(a_bytes, i - 1) + 1] := i;
        end loop;
        return d[(la + 1) * w + lb + 2];
    end
    $body$
{%- endmacro %}
