package backtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The -json lines, one object per line, with exactly the fields the issue
// specifies (times RFC 3339 in the account's zone).
type (
	trackedLine struct {
		Type      string `json:"type"`
		MessageID string `json:"message_id"`
		Account   string `json:"account"`
		Rule      string `json:"rule"`
		Sent      string `json:"sent"`
	}
	reminderLine struct {
		Type      string `json:"type"`
		MessageID string `json:"message_id"`
		Account   string `json:"account"`
		Rule      string `json:"rule"`
		Step      int    `json:"step"`
		Time      string `json:"time"`
	}
	skippedLine struct {
		Type      string `json:"type"`
		MessageID string `json:"message_id"`
		Step      int    `json:"step"`
		Time      string `json:"time"`
		Reason    string `json:"reason"`
	}
)

// WriteJSON writes one JSON object per line, in time order: "tracked" for
// each tracked message (at its sent time), "reminder" for each would-be
// reminder (message_id is the tracked message's) and "skipped" for each
// step the daemon would not have sent.
func (r *Result) WriteJSON(w io.Writer) error {
	type line struct {
		at  time.Time
		id  uint64
		seq int
		v   any
	}
	var lines []line
	for _, t := range r.Threads {
		lines = append(lines, line{t.Sent, t.ID, 0, trackedLine{"tracked", t.MessageID, t.Account, t.Rule, t.Sent.In(t.Loc).Format(time.RFC3339)}})
		for i, m := range t.Reminders {
			lines = append(lines, line{m.At, t.ID, 1 + i, reminderLine{"reminder", t.MessageID, t.Account, t.Rule, m.Step, m.At.In(t.Loc).Format(time.RFC3339)}})
		}
		for i, s := range t.Skipped {
			lines = append(lines, line{s.At, t.ID, 1 + len(t.Reminders) + i, skippedLine{"skipped", t.MessageID, s.Step, s.At.In(t.Loc).Format(time.RFC3339), s.Reason}})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id), cmp.Compare(a.seq, b.seq))
	})
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, l := range lines {
		if err := enc.Encode(l.v); err != nil {
			return fmt.Errorf("writing backtest json: %w", err)
		}
	}
	return nil
}

// Stats summarise the threads of one rule and sender.
type Stats struct {
	Rule, Account string
	Tracked       int
	Reminders     int // would-be reminders
	Reminded      int // threads with at least one would-be reminder
	Skipped       int // steps not sent (max_overdue, unrenderable template)
	Answered      int // threads answered within the history
	// AnsweredBefore: answered before any reminder was due (no reminder
	// would have gone out). AnsweredAfter: answered anyway after a would-be
	// reminder.
	AnsweredBefore, AnsweredAfter int
	Bounced, Stopped, Finished    int
	Open                          int // a step still due after the history ends
	// MedianAnswer is the median time from the tracked message to its
	// answer; MedianAfterReminder from the first would-be reminder to the
	// answer, over threads answered after one.
	MedianAnswer, MedianAfterReminder time.Duration
}

// Stats groups the threads per rule and sender (rule, then account,
// sorted), followed by a total with Rule and Account "*".
func (r *Result) Stats() []Stats {
	type key struct{ rule, account string }
	groups := map[key][]*Thread{}
	for _, t := range r.Threads {
		k := key{t.Rule, t.Account}
		groups[k] = append(groups[k], t)
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.rule, b.rule), cmp.Compare(a.account, b.account)) })
	var out []Stats
	for _, k := range keys {
		out = append(out, stats(k.rule, k.account, groups[k]))
	}
	out = append(out, stats("*", "*", r.Threads))
	return out
}

func stats(rule, account string, ts []*Thread) Stats {
	s := Stats{Rule: rule, Account: account, Tracked: len(ts)}
	var toAnswer, afterRem []time.Duration
	for _, t := range ts {
		s.Reminders += len(t.Reminders)
		s.Skipped += len(t.Skipped)
		if len(t.Reminders) > 0 {
			s.Reminded++
		}
		switch t.Outcome {
		case "bounced":
			s.Bounced++
		case "stopped":
			s.Stopped++
		case "finished":
			s.Finished++
		case "waiting", "held":
			s.Open++
		}
		if t.Answered.IsZero() {
			continue
		}
		s.Answered++
		toAnswer = append(toAnswer, t.Answered.Sub(t.Sent))
		if t.AnsweredAfterReminder() {
			s.AnsweredAfter++
			afterRem = append(afterRem, t.Answered.Sub(t.Reminders[0].At))
		} else {
			s.AnsweredBefore++
		}
	}
	s.MedianAnswer = median(toAnswer)
	s.MedianAfterReminder = median(afterRem)
	return s
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// days prints a duration in days with one decimal ("2.5d"), "-" for none.
func days(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fd", d.Hours()/24)
}

// WriteText writes the readable report: the replayed range, a table per
// rule and sender, and with verbose every tracked thread's timeline.
func (r *Result) WriteText(w io.Writer, verbose bool) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, "backtest %s .. %s: %d account(s), %d message(s) replayed",
		r.Since.Format("2006-01-02"), r.Until.Format("2006-01-02 15:04"), r.Accounts, r.Messages)
	if r.Ignored > 0 {
		fmt.Fprintf(bw, " (%d dated outside the range ignored)", r.Ignored)
	}
	fmt.Fprintln(bw)
	if len(r.Threads) == 0 {
		fmt.Fprintln(bw, "no message would have been tracked: check the rules (followupd explain shows why a message is or is not tracked)")
		return bw.err
	}
	fmt.Fprintln(bw)
	tw := tabwriter.NewWriter(bw, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSENDER\tTRACKED\tREMINDERS\tREMINDED\tANSWERED\tBEFORE REMINDER\tAFTER REMINDER\tMEDIAN TO ANSWER\tMEDIAN AFTER REMINDER\tNO ANSWER\tOPEN\tBOUNCED\tSTOPPED\tSKIPPED")
	for _, s := range r.Stats() {
		rule, acc := s.Rule, s.Account
		if rule == "*" {
			rule, acc = "total", ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n",
			rule, acc, s.Tracked, s.Reminders, s.Reminded, s.Answered, s.AnsweredBefore, s.AnsweredAfter,
			days(s.MedianAnswer, s.Answered), days(s.MedianAfterReminder, s.AnsweredAfter),
			s.Finished, s.Open, s.Bounced, s.Stopped, s.Skipped)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "REMINDERS: would-be reminders; REMINDED: threads with at least one. BEFORE/AFTER REMINDER: answered before any")
	fmt.Fprintln(bw, "reminder was due / answered anyway after one (a reminder there may have been unnecessary). NO ANSWER: every step")
	fmt.Fprintln(bw, "sent, no answer. OPEN: a step still due after the history ends. SKIPPED: steps not sent (max_overdue, template).")
	if verbose {
		fmt.Fprintln(bw)
		for _, t := range r.Threads {
			fmt.Fprintf(bw, "%s  %s  rule %s  %q to %s  <%s>\n", t.Sent.In(t.Loc).Format("2006-01-02 15:04"), t.Account, t.Rule, t.Subject, strings.Join(t.To, ", "), t.MessageID)
			for _, m := range t.Reminders {
				fmt.Fprintf(bw, "    %s  reminder %d\n", m.At.In(t.Loc).Format("2006-01-02 15:04"), m.Step)
			}
			for _, s := range t.Skipped {
				fmt.Fprintf(bw, "    %s  step %d skipped: %s\n", s.At.In(t.Loc).Format("2006-01-02 15:04"), s.Step, s.Reason)
			}
			switch {
			case !t.Answered.IsZero():
				fmt.Fprintf(bw, "    %s  answered after %s\n", t.Answered.In(t.Loc).Format("2006-01-02 15:04"), days(t.Answered.Sub(t.Sent), 1))
			case !t.NextDue.IsZero():
				fmt.Fprintf(bw, "    %s  next step due (%s)\n", t.NextDue.In(t.Loc).Format("2006-01-02 15:04"), t.Outcome)
			default:
				fmt.Fprintf(bw, "    %s\n", t.Outcome)
			}
		}
	}
	return bw.err
}

// errWriter keeps the first write error so the report reads straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, nil
}
