//! Routing policy: pure `decide(queues, agents, waiting, now) -> assignments`.
//!
//! Filled in by the routing issue; until then conversations wait in the queue
//! and agents pick them from the inbox.
