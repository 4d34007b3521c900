package summary

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"followupd/store"
)

// Data is what one summary is made of.
type Data struct {
	// Title names whose summary it is: a sender's display name, or the team.
	Title string
	// Team marks the lead's copy: items show their sender, and conversion
	// is broken down per sender.
	Team bool
	// Senders maps an account name to how it is shown ("Иван Петров").
	// Missing names are shown as the account name.
	Senders map[string]string
	// Steps maps a rule name to its number of steps, for "step 2 of 3".
	Steps map[string]int
	// FollowUps are every follow-up the summary covers (all states); the
	// renderer picks what each section needs.
	FollowUps []*store.FollowUp
	// Since starts "the last day": the previous summary's time. Zero means
	// 24 hours before now.
	Since time.Time
}

// NeedsWindow is how long a bounce or a failure stays in "needs you".
const NeedsWindow = 7 * 24 * time.Hour

// ChartDays is how many days the bar chart covers, today included.
const ChartDays = 14

// Item is one follow-up as a line of the summary.
type Item struct {
	ID        uint64
	Sender    string // display name of the account
	To        string // first recipient's name or address, "+N" for more
	Subject   string
	Kind      string
	Amount    string // the rule's "amount" capture, if any
	SentAt    time.Time
	Age       int       // whole days since SentAt
	Step      int       // the step waiting, drafted or concerned
	Steps     int       // steps of the rule; 0 unknown
	At        time.Time // when the listed event happened (or the next step is due)
	Next      string    // waiting: what comes next, and when
	Note      string    // why it needs a person; who answered
	DryRun    bool      // a reminder recorded by a dry-run account, not sent
	Reminded  bool      // an answer that came after a reminder
	Reminders int       // reminders sent so far
}

// Conversion is answered-after-reminder / reminded for one sender or rule.
type Conversion struct {
	Name                   string
	Reminded7, Answered7   int
	Reminded30, Answered30 int
}

// Rate7 and Rate30 are the percentages, -1 when nothing was reminded.
func (c Conversion) Rate7() int  { return rate(c.Answered7, c.Reminded7) }
func (c Conversion) Rate30() int { return rate(c.Answered30, c.Reminded30) }

func rate(a, n int) int {
	if n == 0 {
		return -1
	}
	return (a*100 + n/2) / n
}

// Day is one column of the chart.
type Day struct {
	Date      time.Time // local midnight
	Reminders int
	Answers   int
}

// Report is the computed content of one summary.
type Report struct {
	Title string
	Team  bool
	Now   time.Time // in the summary's location
	Since time.Time

	Waiting        []Item // oldest first
	Sent           []Item // reminders since Since (dry-run ones flagged)
	Answered       []Item // answers since Since
	AfterReminder  int    // of Answered
	Needs          []Item // bounced, failed, uncertain
	Drafts         []Item // approvals waiting, oldest first
	BySender       []Conversion
	ByRule         []Conversion
	Total          Conversion
	Chart          []Day
	ChartMax       int
	WaitingOverdue int // waiting items whose step is already due
}

// reminder reports whether h records a reminder that reached (or, for
// dry-run, would have reached) the recipient, and whether it was dry-run.
func reminder(h store.HistoryEntry) (ok, dry bool) {
	switch h.Event {
	case store.EvSent:
		return true, strings.HasPrefix(h.Reason, "dry-run")
	case store.EvDraftSent, store.EvResolve:
		return true, false
	}
	return false, false
}

// Compute builds the report of d at now, with times shown in loc.
func Compute(d Data, now time.Time, loc *time.Location) *Report {
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	since := d.Since
	if since.IsZero() || !since.Before(now) {
		since = now.Add(-24 * time.Hour)
	}
	r := &Report{Title: d.Title, Team: d.Team, Now: now, Since: since.In(loc)}
	today := midnight(now)
	chartStart := today.AddDate(0, 0, -(ChartDays - 1))
	for i := range ChartDays {
		r.Chart = append(r.Chart, Day{Date: today.AddDate(0, 0, i-(ChartDays-1))})
	}
	senders := map[string]*Conversion{}
	rules := map[string]*Conversion{}
	conv := func(m map[string]*Conversion, name string) *Conversion {
		c, ok := m[name]
		if !ok {
			c = &Conversion{Name: name}
			m[name] = c
		}
		return c
	}

	for _, f := range d.FollowUps {
		base := item(d, f, now, loc)
		var firstReal time.Time // first reminder that was really sent
		var last7, last30 bool  // reminded within the windows
		for _, h := range f.History {
			if h.At.After(now) {
				continue
			}
			if ok, dry := reminder(h); ok {
				if !dry {
					base.Reminders++
					if firstReal.IsZero() {
						firstReal = h.At
					}
					if now.Sub(h.At) < 7*24*time.Hour {
						last7 = true
					}
					if now.Sub(h.At) < 30*24*time.Hour {
						last30 = true
					}
					if !h.At.Before(chartStart) {
						r.Chart[dayIndex(chartStart, h.At.In(loc))].Reminders++
					}
				}
				if h.At.After(since) {
					it := base
					it.At, it.Step, it.DryRun = h.At.In(loc), h.Step, dry
					r.Sent = append(r.Sent, it)
				}
			}
			if h.Event == store.EvAnswer {
				if !h.At.Before(chartStart) {
					r.Chart[dayIndex(chartStart, h.At.In(loc))].Answers++
				}
				if h.At.After(since) {
					it := base
					it.At = h.At.In(loc)
					it.Reminded = !firstReal.IsZero() && firstReal.Before(h.At)
					it.Note = answeredBy(h.Reason)
					if it.Reminded {
						r.AfterReminder++
					}
					r.Answered = append(r.Answered, it)
				}
			}
		}
		answeredAfter := false
		if !firstReal.IsZero() && f.State == store.StateAnswered {
			for _, h := range f.History {
				if h.Event == store.EvAnswer && h.At.After(firstReal) && !h.At.After(now) {
					answeredAfter = true
				}
			}
		}
		for _, c := range []*Conversion{conv(senders, base.Sender), conv(rules, f.Rule), &r.Total} {
			if last7 {
				c.Reminded7++
				if answeredAfter {
					c.Answered7++
				}
			}
			if last30 {
				c.Reminded30++
				if answeredAfter {
					c.Answered30++
				}
			}
		}

		last := store.HistoryEntry{At: f.SentAt}
		if n := len(f.History); n > 0 {
			last = f.History[n-1]
		}
		switch f.State {
		case store.StateWaiting, store.StateHeld, store.StateSending:
			it := base
			it.Step = f.Step
			it.At = f.Due.In(loc)
			switch f.State {
			case store.StateHeld:
				it.Next = "held until " + dayTime(f.HeldUntil.In(loc)) + " (contact away)"
			case store.StateSending:
				it.Next = stepName(it.Step, it.Steps) + " being sent"
			default:
				if !f.Due.After(now) {
					it.Next = stepName(it.Step, it.Steps) + " due now"
					r.WaitingOverdue++
				} else {
					it.Next = stepName(it.Step, it.Steps) + " " + when(f.Due.In(loc), now)
				}
			}
			r.Waiting = append(r.Waiting, it)
		case store.StateDraft:
			it := base
			it.Step = f.Step
			it.At = last.At.In(loc)
			for _, h := range f.History {
				if h.Event == store.EvDrafted {
					it.At = h.At.In(loc)
				}
			}
			r.Drafts = append(r.Drafts, it)
		case store.StateUncertain:
			it := base
			it.Step, it.At = f.Step, last.At.In(loc)
			it.Note = stepName(f.Step, it.Steps) + " may or may not have been sent (followupd stopped while sending); check Sent, then resolve or cancel it"
			r.Needs = append(r.Needs, it)
		case store.StateBounced, store.StateFailed:
			if now.Sub(last.At) < NeedsWindow {
				it := base
				it.Step, it.At = last.Step, last.At.In(loc)
				what := "bounced"
				if f.State == store.StateFailed {
					what = "reminder failed"
				}
				it.Note = what + ": " + f.Outcome
				r.Needs = append(r.Needs, it)
			}
		}
	}

	byTime := func(a, b Item) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) }
	slices.SortFunc(r.Waiting, func(a, b Item) int { return cmp.Or(a.SentAt.Compare(b.SentAt), cmp.Compare(a.ID, b.ID)) })
	slices.SortFunc(r.Drafts, byTime)
	slices.SortFunc(r.Sent, byTime)
	slices.SortFunc(r.Answered, byTime)
	slices.SortFunc(r.Needs, byTime)
	r.BySender = sorted(senders)
	r.ByRule = sorted(rules)
	for _, day := range r.Chart {
		r.ChartMax = max(r.ChartMax, day.Reminders, day.Answers)
	}
	return r
}

// sorted returns the conversions that saw any reminder in 30 days, by name.
func sorted(m map[string]*Conversion) []Conversion {
	var out []Conversion
	for _, c := range m {
		if c.Reminded30 > 0 {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Conversion) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func item(d Data, f *store.FollowUp, now time.Time, loc *time.Location) Item {
	sender := d.Senders[f.Account]
	if sender == "" {
		sender = f.Account
	}
	to := ""
	if len(f.To) > 0 {
		to = f.To[0].Name
		if to == "" {
			to = f.To[0].Addr
		}
		if len(f.To) > 1 {
			to += " +" + itoa(len(f.To)-1)
		}
	}
	it := Item{
		ID: f.ID, Sender: sender, To: to, Subject: f.Subject, Kind: f.Kind,
		Amount: strings.TrimSpace(f.Vars["amount"]), SentAt: f.SentAt.In(loc),
		Steps: d.Steps[f.Rule],
	}
	if age := now.Sub(f.SentAt); age > 0 {
		it.Age = int(age / (24 * time.Hour))
	}
	return it
}

// answeredBy extracts the address from the daemon's answer reason
// ("answered by anna@client.example (in thread) <id>").
func answeredBy(reason string) string {
	rest, ok := strings.CutPrefix(reason, "answered by ")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, " ("); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// dayIndex is the chart column of t, counted in calendar days (DST-safe).
func dayIndex(start, t time.Time) int {
	return min(max(dayIndexFrom(start, t), 0), ChartDays-1)
}

func stepName(step, steps int) string {
	if steps > 0 {
		return "reminder " + itoa(step) + " of " + itoa(steps)
	}
	return "reminder " + itoa(step)
}

// when shows a time relative to now: "today 14:00", "tomorrow 10:00",
// "Thu 26 Nov 10:00".
func when(t, now time.Time) string {
	switch dayIndexFrom(now, t) {
	case 0:
		return "today " + t.Format("15:04")
	case 1:
		return "tomorrow " + t.Format("15:04")
	}
	return dayTime(t)
}

func dayIndexFrom(a, b time.Time) int {
	y1, m1, d1 := a.Date()
	y2, m2, d2 := b.Date()
	x := time.Date(y1, m1, d1, 12, 0, 0, 0, time.UTC)
	y := time.Date(y2, m2, d2, 12, 0, 0, 0, time.UTC)
	return int(y.Sub(x).Round(24*time.Hour) / (24 * time.Hour))
}

func dayTime(t time.Time) string { return t.Format("Mon 02 Jan 15:04") }

func itoa(n int) string { return strconv.Itoa(n) }
