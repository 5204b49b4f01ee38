//! The instance allocator: wasmtime's pooling allocator, sized for goru's
//! guests.
//!
//! Without it every instance maps its linear memory (for Python, the 27 MiB
//! copy-on-write image of its pre-initialized snapshot), its tables and its
//! fiber stack afresh, and unmaps them when it is dropped. The pool reserves
//! slots for all of them once, when the engine is built; a slot that held a
//! guest keeps that guest's memory image mapped copy-on-write, and where the
//! kernel can say which pages an instance wrote (`PAGEMAP_SCAN`, Linux 6.7+)
//! only those are copied back from the image when the instance is dropped:
//! they stay mapped, so the next instance in the slot does not fault on them.
//! Instances are never reused: only the slots are, each reset to the image.

use crate::Error;
use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Live instances an engine can hold by default, both languages together
/// (sessions, one-shot runs in progress and warm-pool instances): the
/// design's 1,000 live sessions per language, with room for the warm pools
/// and for sessions being torn down.
pub const DEFAULT_MAX_INSTANCES: u32 = 2_200;

/// Core wasm instances in one guest: Python's componentize-py component
/// instantiates 14 core modules (CPython, its extension libraries, the WASI
/// adapter, shims), JavaScript's 4. Counted with `wasmparser` over the
/// components' instance sections; `tests/pool.rs` checks that an engine
/// sized for one instance starts one of each.
const CORE_INSTANCES_PER_GUEST: u32 = 14;
/// Linear memories one guest defines (both guests: one).
const MEMORIES_PER_GUEST: u32 = 1;
/// Tables one guest defines (both guests: two, the indirect-call table and
/// the component's shim table).
const TABLES_PER_GUEST: u32 = 2;

/// Linear memory an instance wrote that is copied back from the image on
/// drop, and kept mapped, rather than discarded: JavaScript's whole working
/// set of a short run. Python writes to more scattered pages than wasmtime
/// tracks (32 regions); past that, the rest is discarded as without it.
const MEMORY_KEEP_RESIDENT: usize = 4 << 20;
/// The same for tables: Python's indirect-call table (about 90,000 entries).
const TABLE_KEEP_RESIDENT: usize = 1 << 20;

/// The wasmtime engine for `config`: with the pooling allocator for
/// `max_instances` when asked (`Some`), falling back to allocating on demand
/// when the pool's address space cannot be reserved (reported through
/// `progress`); and whether it pools.
pub(crate) fn new_engine(
    config: &mut wasmtime::Config,
    max_instances: Option<u32>,
    progress: Option<&(dyn Fn(&str) + Send + Sync)>,
) -> Result<(wasmtime::Engine, bool), Error> {
    if let Some(max_instances) = max_instances {
        // A reused stack is wiped, as a fresh one would be: defense in depth
        // (wasm cannot read the host stack).
        config.async_stack_zeroing(true);
        let mut last_error = None;
        // Without `PAGEMAP_SCAN` (older kernels), keeping memory resident
        // would mean copying it back whole: drop that too.
        for track_writes in [true, false] {
            config.allocation_strategy(pooling(max_instances, track_writes));
            match wasmtime::Engine::new(config) {
                Ok(engine) => return Ok((engine, true)),
                Err(err) => last_error = Some(err),
            }
        }
        if let (Some(progress), Some(err)) = (progress, last_error) {
            progress(&format!(
                "warning: the pooling allocator is unavailable ({err}); allocating instances on demand"
            ));
        }
        config.async_stack_zeroing(false);
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    }
    let engine = wasmtime::Engine::new(config).map_err(|e| Error::EngineSetup(e.to_string()))?;
    Ok((engine, false))
}

/// The pooling strategy for at most `max_instances` live instances.
///
/// Every memory slot reserves (not commits) 4 GiB plus a guard region of
/// address space, every stack slot [`crate::MAX_WASM_STACK`] plus 2 MiB:
/// about 4.2 GiB per instance, 9 TiB for the default, of the 128 TiB a
/// 64-bit Linux process can address. Building the pool costs about 4 us per
/// instance (a guard page per stack slot), dropping it about 1.5 us.
fn pooling(max_instances: u32, track_writes: bool) -> InstanceAllocationStrategy {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances.saturating_mul(CORE_INSTANCES_PER_GUEST))
        .total_memories(max_instances.saturating_mul(MEMORIES_PER_GUEST))
        .total_tables(max_instances.saturating_mul(TABLES_PER_GUEST))
        // A live session keeps its fiber stack between runs.
        .total_stacks(max_instances)
        // The most a guest may be given (the memory limiter enforces the
        // session's own limit below it).
        .max_memory_size(crate::MAX_MEMORY_BYTES as usize)
        // Any table may grow as far as the limiter allows.
        .table_elements(crate::limiter::MAX_TABLE_ELEMENTS);
    if track_writes {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
    InstanceAllocationStrategy::Pooling(pool)
}

/// Whether `err` (from instantiating) means the pool had no free slot.
pub(crate) fn is_pool_exhausted(err: &wasmtime::Error) -> bool {
    err.is::<wasmtime::PoolConcurrencyLimitError>()
}
