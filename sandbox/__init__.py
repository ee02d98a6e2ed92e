"""The local API sandbox: protocol-faithful simulators of the SaaS APIs idlink talks to, plus synthetic data with
ground truth. Used by the demo, the tests and the benchmarks; never imported by production code, and not part of
the installed distribution (it is imported from the repository root).

Layout:

- core, this folder: ``__main__`` (the ``python -m sandbox`` command line), ``server`` (one HTTPS Starlette app
  composed from the system packages), ``context`` (shared state and settings of one sandbox process),
  ``faults`` (injected failures and latency), ``tls`` (a CA generated at start), ``admin`` (``/__sandbox/*``),
  ``seed`` (JSONL seed files or synthetic data into the systems);
- one package per simulated system: ``microsoft`` (identity platform + Graph, as a B2C / External ID tenant),
  ``salesforce`` (OAuth, REST, sObject Collections, Bulk API 2.0, SOQL), ``akamai`` (Identity Cloud Entity API
  and signed Webhooks v3), ``scim`` (a SCIM 2.0 directory: ``/Users``, filtering, paging);
- ``synthetic``: people written into the systems they use, with the truth of who is whom.

Adding a simulated system (e.g. ``dataverse``): create ``sandbox/<system>/`` whose ``__init__`` exposes
``routes(ctx) -> list[BaseRoute]``, optionally ``env(ctx) -> dict[str, str]`` (the variables that point idlink's
clients at it) and a seed loader ``load_<records>(ctx, records) -> int``; keep its records in
``ctx.state["<system>"]`` in the API's native shape; list the package in ``server.SYSTEM_MODULES`` and, if it
takes seed records, in ``seed.SEED_TARGETS`` (which also gives ``python -m sandbox serve`` its ``--<records>``
option and names the field of ``synthetic.SyntheticData`` that synthetic records come from). System packages
import only the core and their own modules, never each other.
"""
