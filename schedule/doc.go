// Package schedule decides when a tracked message's next reminder step is
// due and wakes its owner at that moment.
//
// It holds, in memory, the next due time of every pending follow-up: a
// hierarchical timing Wheel keyed by follow-up id, owned by a Scheduler and
// its one goroutine (Run). The owner (main.go's wiring around store and
// send) tells the Scheduler about new, moved and finished follow-ups with Set
// and Cancel, and receives each id when its time comes.
//
// Invariants:
//   - bbolt is the truth; the wheel is a cache. At start the owner rebuilds
//     it from the store (every follow-up waiting or held, at its due time),
//     so a restart yields the same due set as before it (DESIGN.md,
//     invariant 5). Nothing in this package is persisted.
//   - A fired id is only a hint. It is removed from the wheel before fire is
//     called, and the owner re-checks the follow-up's state in a bbolt
//     transaction (still waiting? still this step? no answer?) and moves it
//     to sending in that same transaction, so a stale or duplicate hint can
//     never send a step twice or after a reply.
//   - One goroutine alone advances the wheel: Run's. Set and Cancel, from
//     any goroutine, only insert and remove under the Scheduler's mutex and
//     kick Run through a capacity-1 channel (a non-blocking send), like
//     mox's queue. fire runs on Run's goroutine, without the mutex held, one
//     id at a time in due order; it may call Set and Cancel.
//   - Business time is not computed here: due times come from package
//     calendar, already placed in the account's zone, holidays and window.
//     The wheel compares instants only.
//   - Run never sleeps longer than maxSleep, so a wall-clock jump (NTP step,
//     suspended VM) delays a step by at most that much: timers run on the
//     monotonic clock, due times are wall times.
//   - Time comes from a clock.Clock; tests advance a clock.Fake and poll
//     Idle (or the fake's Pending) before advancing, never sleep.
package schedule
