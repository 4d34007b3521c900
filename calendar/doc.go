// Package calendar is business time as a pure function: which local days
// are working days in an account's zone and country, and what "n business
// days later" or "the next time the send window opens" means.
//
// A Calendar is built once from configuration (New) and then only read; it
// is safe for concurrent use.
//
// Invariants:
//   - Every decision is taken on the local civil date in the Calendar's
//     time.Location, never on UTC dates: 23:30 on a Friday in Moscow is a
//     Friday even though it is already Saturday somewhere else.
//   - Day stepping works on civil dates (year, month, day), and a result
//     keeps the input's local wall-clock time, rebuilt with time.Date in the
//     Calendar's zone. Adding days never adds 24h durations, so a delay
//     across a DST change keeps its local hour. A wall time that does not
//     exist on the target day (inside a spring-forward gap) becomes the
//     instant just after the gap (02:30 -> 03:30), never the day before.
//   - Public holidays come from github.com/rickar/cal/v2, the country's
//     national list, both the actual day and its observed (substitute) day.
//     The only supplement is Russia's New Year holidays, see ruNewYear.
//   - Precedence, strongest first: a configured holiday; a configured
//     workday (Russia's moved Saturdays, or a public holiday moved away by
//     decree); a public holiday; Saturday and Sunday. A date may not be both
//     a configured holiday and a configured workday (New rejects it).
//   - Business days always exist: configured lists are finite and public
//     holidays are a few a year, so every loop over days ends.
package calendar
