"""Azure backend: Table storage for records, one Storage queue per federation for
wake-up hints, Blob storage for large payloads, journals and the leader lease.

Layout (``p`` = the configured prefix; ``h(x)`` = 32 hex digits of sha256, so any
unicode id of any allowed length makes a valid, bounded key)::

    table pfeds      PK 'fed'   RK fid                   unique flag, created, state (active|destroying)
    table ppools     PK 'pool'  RK h(url|pool)            one entity per pool: a pool has one federation
    table pactions   PK fid     RK T~h(target)            live FIFO: next position, head position, ready_at
                                RK I~h(target)            idle FIFO: next position (kept so positions never repeat)
                                RK A~h(target)~0000000042 one action per FIFO position (no per-job cap)
                                RK U~<action id>          unique-id index → (target, position)
                                RK J~<batch id>           committed journal of a large enqueue (roll-forward)
    table plocations PK fid     RK h(job)~kind~h(url|pool)
    table pmeta      PK 'signal' | 'flag' | 'proxy'
    blobs p-data     <fid>/payload/<action id>.json, <fid>/journal/<batch id>.json
    blobs p-leases   <lease name>   (Blob lease, holder/expiry in metadata)
    queue p-q-h(fid) action ids (hints only: the tables are the truth)

Every change that two writers can meet is an ETag-conditional write or an
entity-group transaction (≤ 100 operations, one partition) that includes one;
a lost race re-reads and tries again.

Modules: ``service`` (clients, SDK error boundary, optimistic retries), ``entities`` (keys,
packing, conditions), ``tables`` (federations, pools), ``locations`` (job locations),
``actions`` (action entities, FIFO records, reads), ``journal`` (enqueue), ``claims``,
``lease``, ``meta`` (proxy records, logs, flags, signals), ``connection`` (SDK clients from
settings), ``transactions`` (entity-group transactions without thread pools).
"""

from .store import AzureStore

__all__ = ["AzureStore"]
