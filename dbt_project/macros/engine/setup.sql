{# Run at the start of every dbt invocation (on-run-start): what an engine needs before any model runs. DuckDB has
   all of it built in. #}
{% macro engine_setup() -%}
    {{ return(adapter.dispatch('engine_setup', 'idlink')()) }}
{%- endmacro %}

{% macro default__engine_setup() -%}
    select 1
{%- endmacro %}

{# Postgres: extensions for accent stripping and edit distance, and a Jaro-Winkler function (it has none), so
   both engines compare names with the same measure and the same thresholds apply; likewise an edit distance that
   counts a transposition of two neighbours as one edit, as DuckDB's damerau_levenshtein does. #}
{% macro postgres__engine_setup() -%}
    create extension if not exists unaccent;
    create extension if not exists fuzzystrmatch;
    {{ idlink.postgres_jaro_winkler_function() }};
    {{ idlink.postgres_damerau_levenshtein_function() }}
{%- endmacro %}

{# Jaro-Winkler similarity as DuckDB (and the usual definition) computes it: characters match within a window of
   half the longer length less one; jaro = (m/|a| + m/|b| + (m - t)/m) / 3 with t half the matched characters out
   of order; when jaro is at least 0.7, a shared prefix of up to 4 characters adds 0.1 * prefix * (1 - jaro). #}
{% macro postgres_jaro_winkler_function() -%}
    create or replace function {{ target.schema }}.idlink_jaro_winkler(a text, b text)
    returns double precision language plpgsql immutable strict parallel safe as $fn$
    declare
        la int := char_length(a);
        lb int := char_length(b);
        window_size int;
        matched_b boolean[];
        a_matches text[] := '{}';
        b_matches text[] := '{}';
        m int := 0;
        t int := 0;
        prefix int := 0;
        jaro double precision;
        i int;
        j int;
    begin
        if la = 0 or lb = 0 then
            return case when la = lb then 1.0 else 0.0 end;
        end if;
        window_size := greatest(greatest(la, lb) / 2 - 1, 0);
        matched_b := array_fill(false, array[lb]);
        for i in 1..la loop
            for j in greatest(1, i - window_size)..least(lb, i + window_size) loop
                if not matched_b[j] and substr(a, i, 1) = substr(b, j, 1) then
                    matched_b[j] := true;
                    a_matches := a_matches || substr(a, i, 1);
                    m := m + 1;
                    exit;
                end if;
            end loop;
        end loop;
        if m = 0 then
            return 0.0;
        end if;
        for j in 1..lb loop
            if matched_b[j] then
                b_matches := b_matches || substr(b, j, 1);
            end if;
        end loop;
        for i in 1..m loop
            if a_matches[i] <> b_matches[i] then
                t := t + 1;
            end if;
        end loop;
        jaro := (m::double precision / la + m::double precision / lb + (m - t / 2.0) / m) / 3.0;
        if jaro < 0.7 then
            return jaro;
        end if;
        while prefix < least(4, la, lb) and substr(a, prefix + 1, 1) = substr(b, prefix + 1, 1) loop
            prefix := prefix + 1;
        end loop;
        return jaro + 0.1 * prefix * (1.0 - jaro);
    end
    $fn$
{%- endmacro %}

{# Edit distance with a transposition of two neighbouring characters as one edit (optimal string alignment; for
   distances of one or two, what DuckDB's damerau_levenshtein gives). #}
{% macro postgres_damerau_levenshtein_function() -%}
    create or replace function {{ target.schema }}.idlink_damerau_levenshtein(a text, b text)
    returns int language plpgsql immutable strict parallel safe as $fn$
    declare
        la int := char_length(a);
        lb int := char_length(b);
        d int[];
        cost int;
        i int;
        j int;
        w int := char_length(b) + 1;
    begin
        if la = 0 then return lb; end if;
        if lb = 0 then return la; end if;
        -- (la + 1) x (lb + 1) matrix, row-major, 1-based: d[i * w + j + 1] is the distance of a[1..i] and b[1..j]
        d := array_fill(0, array[(la + 1) * w]);
        for i in 0..la loop d[i * w + 1] := i; end loop;
        for j in 0..lb loop d[j + 1] := j; end loop;
        for i in 1..la loop
            for j in 1..lb loop
                cost := case when substr(a, i, 1) = substr(b, j, 1) then 0 else 1 end;
                d[i * w + j + 1] := least(d[(i - 1) * w + j + 1] + 1, d[i * w + j] + 1, d[(i - 1) * w + j] + cost);
                if i > 1 and j > 1 and substr(a, i, 1) = substr(b, j - 1, 1) and substr(a, i - 1, 1) = substr(b, j, 1) then
                    d[i * w + j + 1] := least(d[i * w + j + 1], d[(i - 2) * w + j - 1] + 1);
                end if;
            end loop;
        end loop;
        return d[la * w + lb + 1];
    end
    $fn$
{%- endmacro %}
