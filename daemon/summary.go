package daemon

// The daily summary and approval mode's housekeeping: one goroutine
// (housekeep) that sends the summaries at [summary] time on business days
// (each sender's in their account's zone and calendar, the team's in the
// top-level ones: see summaryJob), checks every hour whether drafted
// reminders were sent or deleted, and sends the approval notices ("3
// reminders are waiting in Drafts"), at most one per hour per account.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/calendar"
	"followupd/config"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/send"
	"followupd/store"
	"followupd/summary"
)

// Housekeeping timings.
const (
	// draftCheckEvery is how often drafted reminders are looked up in
	// Drafts (and at each summary).
	draftCheckEvery = time.Hour
	// draftGoneConfirm: a draft missing from Drafts and Sent is skipped
	// only when it is still missing this long after it was first missed,
	// so a client that deletes the draft before it files the sent copy
	// is not mistaken for a deletion.
	draftGoneConfirm = 10 * time.Minute
	// noticeBatch is how long a first draft waits for the rest of its
	// batch before the notice goes out; noticeEvery paces notices.
	noticeBatch = 2 * time.Minute
	noticeEvery = time.Hour
	// summaryKeep: terminal follow-ups older than this are left out of
	// the summary's data (conversion looks back 30 days).
	summaryKeep = 32 * 24 * time.Hour
)

// Meta keys.
const (
	// metaSummaryLast is the team summary's summaryRecord. Before each
	// summary had its own schedule it was every summary's, a bare RFC 3339
	// time; planSummaries hands it on to the senders' records.
	metaSummaryLast = "summary/last"
	metaSummaryPfx  = "summary/last/" // + account: its own summary's summaryRecord
	metaNoticePfx   = "notice/"       // + account: RFC 3339 time of its last approval notice
)

// housekeeper is the state of the housekeeping goroutine that other
// goroutines touch: the kick channel and the notice plan.
type housekeeper struct {
	kick chan struct{} // capacity 1: wake the loop (a draft was made)

	mu       sync.Mutex
	noticeAt map[string]time.Time // account -> when its pending notice goes out
	missing  map[uint64]time.Time // draft follow-up -> first time it was missed in Drafts
}

func newHousekeeper() *housekeeper {
	return &housekeeper{kick: make(chan struct{}, 1), noticeAt: map[string]time.Time{}, missing: map[uint64]time.Time{}}
}

func (h *housekeeper) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// draftNoted plans account's approval notice after a new draft: after a
// short batching delay, and not within noticeEvery of the previous one.
func (d *Daemon) draftNoted(account string) {
	h := d.house
	if h == nil {
		return
	}
	now := d.clk.Now()
	at := now.Add(noticeBatch)
	if last, ok := d.metaTime(metaNoticePfx + account); ok && last.Add(noticeEvery).After(at) {
		at = last.Add(noticeEvery)
	}
	h.mu.Lock()
	if _, planned := h.noticeAt[account]; !planned {
		h.noticeAt[account] = at
	}
	h.mu.Unlock()
	h.wake()
}

func (d *Daemon) metaTime(key string) (time.Time, bool) {
	v, err := d.db.Meta(key)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

func (d *Daemon) putMetaTime(key string, t time.Time) {
	if err := d.db.PutMeta(key, []byte(t.UTC().Format(time.RFC3339Nano))); err != nil {
		d.log.Error("recording "+key, "err", err)
	}
}

// Each daily summary has its own schedule, a summaryJob: a sender's own
// goes out at [summary] time in that account's zone, on that account's
// business days (its effective time_zone and calendar, config/effective.go,
// with the shared holidays and workdays: the days its reminders count), and
// covers that account's day; the team's keeps the top-level zone and
// calendar, whichever account sends it.
//
// Invariants, per job and in the zone in force when a summary goes out:
//   - Never two summaries on one local day. Each job's summaryRecord, in
//     the store, names the local day its last summary went out on (the
//     date of the send, not of the slot it was for), and a plan is only
//     ever for a later day, so a restart or a reload plans again from the
//     records and cannot send a day twice. A record made in another zone (a
//     reload moved the account; the single record of before each job had
//     its own, see planSummaries) is read in the job's zone from the
//     instant it was made (summaryRecord.in): a summary sent Tuesday 08:30
//     in Los Angeles went out on Wednesday in Vladivostok.
//   - Never a business day skipped while the daemon runs, unless the
//     server refuses that day's summary for good. A record is written right
//     after its own summary was accepted, dated by the clock then (a retry
//     accepted past midnight is the new day's), or when the server may have
//     taken it (send.Error.MaybeSent: the reply was lost, also to a
//     shutdown's cancellation), never for a send that failed or was
//     cancelled before the whole message was written (see summarySent):
//     one accepted just before a kill or crash, ahead of its record, comes
//     twice after the restart. A failure that may pass (4xx, connection) is
//     retried every summaryRetry; a permanent refusal (5xx) waits for the
//     next business day. A day whose time passed with no summary sent (the
//     daemon was down, a reload came at that moment, the send failed) is
//     caught up once, the same day: a summary goes out only on a business
//     day, at or after its time and before that local day ends (a send
//     begun before midnight may be accepted just after it, and then counts
//     as the new day's). A send that comes up only on a later local day (a
//     suspended host) is planned again, as at a start, rather than be sent
//     for a day that has passed and then followed by that day's own.
//   - A job without a record gets one when first planned, the last day
//     whose time has passed, so a first start, a new account or a summary
//     just enabled does not send that day's summary late.
//   - A record dated after today (the host's clock ran ahead and was set
//     back) is logged and counts as today's: at most today is lost, not
//     every day until that date.

// summaryRetry is how long a daily summary that could not be sent waits
// before the next try (the same local day only: see summaryJob).
const summaryRetry = 15 * time.Minute

// summaryJob is one daily summary and its schedule.
type summaryJob struct {
	account string             // the sender's account; "" for the team summary
	cal     *calendar.Calendar // its zone and business days (no send window)
	at      int                // [summary] time, minutes past local midnight
}

// key is the meta key of the job's summaryRecord.
func (j summaryJob) key() string { return summaryKey(j.account) }

func (j summaryJob) String() string { return cmp.Or(j.account, "team") }

// zone is the name of the job's zone, as summaryRecord keeps it.
func (j summaryJob) zone() string { return j.cal.Location().String() }

// today is now's local date in the job's zone.
func (j summaryJob) today(now time.Time) calendar.Day { return calendar.DayOf(now, j.cal.Location()) }

// slot is the job's time on day d (after the gap when d's wall clock skips
// it, on d even where the gap swallows midnight: calendar.Local).
func (j summaryJob) slot(d calendar.Day) time.Time { return j.cal.Local(d, j.at*60, 0) }

// summaryKey is the meta key of the record of account's own summary, or
// of the team's ("").
func summaryKey(account string) string {
	if account == "" {
		return metaSummaryLast
	}
	return metaSummaryPfx + account
}

// sendersGetSummary reports [summary] senders (default true).
func sendersGetSummary(cfg *config.Config) bool {
	return cfg.SummaryMail.Senders == nil || *cfg.SummaryMail.Senders
}

// summaryJobs lists cfg's daily summaries: the senders' in account order,
// then the team's. A calendar that fails to build leaves its job out and is
// reported (joined), so one account does not hold back the others. The
// calendars are built as the accounts' own (configCalendar) but without a
// send window, and the team's from the top-level settings, which no
// account's calendar has.
func summaryJobs(cfg *config.Config) ([]summaryJob, error) {
	at := int(config.DefaultSummaryTime)
	if cfg.SummaryMail.Time != nil {
		at = int(*cfg.SummaryMail.Time)
	}
	var jobs []summaryJob
	var errs []error
	add := func(a *config.Account) { // nil: the team's, top-level settings
		j := summaryJob{at: at}
		if a != nil {
			j.account = a.Name
		}
		cal, err := configCalendar(cfg, a, calendar.Window{})
		if err != nil {
			errs = append(errs, fmt.Errorf("calendar of the %s summary: %w", j, err))
			return
		}
		j.cal = cal
		jobs = append(jobs, j)
	}
	if sendersGetSummary(cfg) {
		for i := range cfg.Accounts {
			add(&cfg.Accounts[i])
		}
	}
	if len(cfg.SummaryMail.Leads) > 0 {
		add(nil)
	}
	return jobs, errors.Join(errs...)
}

// summaryRecord is what a job last did: the local day its last summary
// went out on (or, with no summary sent, the last day passed over), and
// enough to read that day again in another zone.
type summaryRecord struct {
	// Day is the local date in Zone of the last summary's send; for a day
	// passed over (a job's first plan), the last day whose time had passed.
	Day calendar.Day
	// Slot is the time the last summary was sent for, which starts the
	// next summary's "last day"; zero when none was sent (a day passed over).
	Slot time.Time
	// At is when the record was made: the send, or the plan that passed
	// the day over. Zero in records written before it was kept.
	At time.Time
	// Zone is the name of the zone Day was taken in; "" when not known (a
	// record from before it was kept, or the single record of before each
	// job had its own, made in the top-level zone of the time).
	Zone string
}

// String is the stored form: "2026-11-24 2026-11-24T05:30:00Z
// 2026-11-24T05:30:02Z Europe/Moscow" (day, slot, made at, zone), with "-"
// for the slot of a day passed over. Records written before At and Zone
// were kept hold the day alone or the day and the slot; a bare RFC 3339
// time is the single record of before (parseSummaryRecord).
func (r summaryRecord) String() string {
	if r.At.IsZero() {
		if r.Slot.IsZero() {
			return r.Day.String()
		}
		return r.Day.String() + " " + r.Slot.UTC().Format(time.RFC3339Nano)
	}
	slot := "-"
	if !r.Slot.IsZero() {
		slot = r.Slot.UTC().Format(time.RFC3339Nano)
	}
	return r.Day.String() + " " + slot + " " + r.At.UTC().Format(time.RFC3339Nano) + " " + cmp.Or(r.Zone, "-")
}

// parseSummaryRecord reads a stored summaryRecord. legacy reports the form
// written before each summary had its own schedule: a bare RFC 3339 time,
// the slot of every summary, sent then in the top-level zone of the time
// (which may not be today's): it is returned as a summary sent at that
// time in an unknown zone, its Day left for in to set.
func parseSummaryRecord(v string) (r summaryRecord, legacy bool, err error) {
	f := strings.Split(v, " ")
	if len(f) == 1 {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return summaryRecord{Slot: t, At: t}, true, nil
		}
	}
	bad := func(err error) (summaryRecord, bool, error) {
		return summaryRecord{}, false, fmt.Errorf("summary record %q: %w", v, err)
	}
	if len(f) != 1 && len(f) != 2 && len(f) != 4 {
		return bad(errors.New("not 1, 2 or 4 fields"))
	}
	d, err := time.Parse(time.DateOnly, f[0])
	if err != nil {
		return bad(err)
	}
	r.Day = calendar.Day{Year: d.Year(), Month: d.Month(), Day: d.Day()}
	if len(f) > 1 && f[1] != "-" {
		if r.Slot, err = time.Parse(time.RFC3339Nano, f[1]); err != nil {
			return bad(err)
		}
	}
	if len(f) == 4 {
		if r.At, err = time.Parse(time.RFC3339Nano, f[2]); err != nil {
			return bad(err)
		}
		if f[3] != "-" {
			r.Zone = f[3]
		}
	}
	return r, false, nil
}

// readSummaryRecord returns the record stored under key (an error
// matching store.ErrNotFound when there is none).
func readSummaryRecord(db *store.DB, key string) (summaryRecord, bool, error) {
	v, err := db.Meta(key)
	if err != nil {
		return summaryRecord{}, false, err
	}
	return parseSummaryRecord(string(v))
}

func (d *Daemon) putSummaryRecord(key string, r summaryRecord) {
	if err := d.db.PutMeta(key, []byte(r.String())); err != nil {
		d.log.Error("recording "+key, "err", err)
	}
}

// in is r read in job's zone. A record made in another zone (or an unknown
// one) has its day taken again from the instant it was made: a summary
// sent then went out on that instant's local date here, and a day passed
// over then is the last whose time had passed here. A record without that
// instant (written before it was kept) is taken as it is.
func (r summaryRecord) in(job summaryJob) summaryRecord {
	if r.At.IsZero() || r.Zone == job.zone() {
		return r
	}
	if r.Slot.IsZero() {
		r.Day = lastSlotDay(job, r.At)
	} else {
		r.Day = job.today(r.At)
	}
	r.Zone = job.zone()
	return r
}

// settle is r as job plans from it at now: read in job's zone (in), and
// dated no later than today. ahead reports a record dated after today
// (the host's clock ran ahead and was set back), which counts as today's.
func (r summaryRecord) settle(job summaryJob, now time.Time) (s summaryRecord, ahead bool) {
	r = r.in(job)
	if today := job.today(now); today.Before(r.Day) {
		r.Day, ahead = today, true
		if r.Slot.After(now) {
			r.Slot = now
		}
		if r.At.After(now) {
			r.At = now
		}
	}
	return r, ahead
}

// summaryDue is a job's next send: the local day it is for, when it goes
// out (zero: never, no business day within 400 days), and the record it
// was planned from, whose slot starts its summary's "last day".
type summaryDue struct {
	job summaryJob
	rec summaryRecord
	day calendar.Day
	at  time.Time
}

// since is the start of the due summary's "last day" (zero: none sent).
func (s summaryDue) since() time.Time { return s.rec.Slot }

// sent is the record of s accepted by the server at now: on s.day, or on
// a later day when a send begun before midnight was accepted after it
// (summarySent), which then counts as that day's. Its slot, not the send
// time, starts the next summary's "last day", whatever delayed this one.
func (s summaryDue) sent(now time.Time) summaryRecord {
	return summaryRecord{Day: s.job.today(now), Slot: minTime(s.at, now), At: now, Zone: s.job.zone()}
}

// current is s at now: as it is, unless it came up only on a later local
// day than its own (a suspended host, or a send retried past midnight);
// then it is planned again from its record, as at a start, and goes out
// today only if today is a business day whose time has passed.
func (s summaryDue) current(now time.Time) summaryDue {
	if s.at.IsZero() || now.Before(s.at) || s.job.today(now) == s.day {
		return s
	}
	return planSummary(s.job, s.rec, now)
}

// planSummary plans job's next send at now, after its record rec (settled:
// in job's zone, no later than today): at once for today when today is a
// business day, its time has passed and rec is of an earlier day (a late
// start or a reload catches up once, the same day); else at its time on
// the first business day after rec's day whose time is still to come.
func planSummary(job summaryJob, rec summaryRecord, now time.Time) summaryDue {
	rec, _ = rec.settle(job, now)
	today := job.today(now)
	due := summaryDue{job: job, rec: rec}
	if slot := job.slot(today); rec.Day.Before(today) && !slot.After(now) && job.cal.IsBusinessDay(slot) {
		due.day, due.at = today, now
		return due
	}
	d := today
	if !rec.Day.Before(today) {
		d = rec.Day.AddDays(1)
	}
	for range 400 {
		if slot := job.slot(d); slot.After(now) && job.cal.IsBusinessDay(slot) {
			due.day, due.at = d, slot
			return due
		}
		d = d.AddDays(1)
	}
	return due
}

// lastSlotDay is the last local day of job whose time has passed at now.
func lastSlotDay(job summaryJob, now time.Time) calendar.Day {
	today := job.today(now)
	if job.slot(today).After(now) {
		return today.AddDays(-1)
	}
	return today
}

// planSummaries plans every daily summary of cfg at now from its record,
// writing the records a job lacks (see summaryJob) and those it reads in
// another form: another zone's, one dated ahead. The first time after an
// upgrade, the single record of before (everyone's last summary, sent at
// the top-level slot) becomes each sender's, its day the date of that send
// in the sender's own zone: no second summary that local day, none
// skipped.
func (d *Daemon) planSummaries(cfg *config.Config, now time.Time) []summaryDue {
	jobs, err := summaryJobs(cfg)
	if err != nil {
		d.log.Error("planning daily summaries", "err", err)
	}
	old, legacy, err := readSummaryRecord(d.db, metaSummaryLast)
	legacy = legacy && err == nil
	var out []summaryDue
	team := false
	for _, j := range jobs {
		team = team || j.account == ""
		rec, _, err := readSummaryRecord(d.db, j.key())
		handed := false
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound) && legacy:
			rec, handed = old, true
		default:
			if !errors.Is(err, store.ErrNotFound) {
				// Unreadable: passed over as for a new job. A time passed
				// today is not caught up (that summary may have gone out);
				// one still ahead today goes out.
				d.log.Error("reading the daily summary record", "summary", j, "err", err)
			}
			rec = summaryRecord{Day: lastSlotDay(j, now), At: now, Zone: j.zone()}
		}
		settled, ahead := rec.settle(j, now)
		switch {
		case ahead:
			d.log.Warn("daily summary record dated after today (was the clock ahead?); taken as today's", "summary", j, "record", rec.Day, "today", settled.Day)
		case handed:
			d.log.Info("daily summary record handed on from the single one of before", "summary", j, "sent", old.At, "day", settled.Day)
		case rec.Zone != "" && rec.Zone != settled.Zone:
			d.log.Info("daily summary record made in another zone; its day read in this one", "summary", j, "zone", rec.Zone, "day", rec.Day, "here", settled.Day)
		}
		if err != nil || settled.String() != rec.String() {
			d.putSummaryRecord(j.key(), settled)
		}
		due := planSummary(j, settled, now)
		if due.at.IsZero() {
			d.log.Warn("daily summary not planned: no business day within 400 days", "summary", j)
		} else {
			d.log.Info("daily summary planned", "summary", j, "at", due.at)
		}
		out = append(out, due)
	}
	if legacy && !team {
		// Rewritten in the new form (the team's job did it, if any): an
		// account added later starts afresh.
		top := cfg.Location(nil)
		d.putSummaryRecord(metaSummaryLast, summaryRecord{Day: calendar.DayOf(old.At, top), Slot: old.Slot, At: old.At, Zone: top.String()})
	}
	return out
}

// housekeep is the housekeeping goroutine. It starts once every account
// has synced (so the first summary and draft check see the mailboxes as
// they are) and stops when ctx ends; io is the context of its network
// calls (cancelled later, so a summary being sent may finish).
func (d *Daemon) housekeep(ctx, io context.Context) {
	select {
	case <-d.ready:
	case <-ctx.Done():
		return
	}
	h := d.house
	nextDrafts := d.clk.Now()
	// The summaries are planned once per configuration and each again
	// after it is sent, from the records (see summaryJob).
	var dues []summaryDue
	var planned *config.Config
	for {
		cur := d.current()
		cfg := cur.cfg
		now := d.clk.Now()
		next := nextDrafts
		if cfg != planned {
			planned, dues = cfg, nil
			if cfg.SummaryMail.Enabled {
				dues = d.planSummaries(cfg, now)
			}
		}
		var ready []int // of dues
		for i := range dues {
			dues[i] = dues[i].current(now)
			s := dues[i]
			if s.at.IsZero() {
				continue
			}
			next = minTime(next, s.at)
			if !now.Before(s.at) {
				ready = append(ready, i)
			}
		}
		h.mu.Lock()
		for _, at := range h.noticeAt {
			next = minTime(next, at)
		}
		h.mu.Unlock()

		if wait := next.Sub(now); wait > 0 {
			d.live.mu.RLock()
			changed := d.live.changed
			d.live.mu.RUnlock()
			t := d.clk.NewTimerAt(next) // the deadline, whatever the clock did since now
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			case <-h.kick:
				t.Stop()
			case <-changed:
				t.Stop()
			}
			continue // recompute: the kick or reload may change the plan
		}

		if !now.Before(nextDrafts) {
			retry := cur.checkAllDrafts(io)
			nextDrafts = now.Add(draftCheckEvery)
			if retry {
				nextDrafts = now.Add(draftGoneConfirm)
			}
		}
		h.mu.Lock()
		var due []string
		for acct, at := range h.noticeAt {
			if !now.Before(at) {
				due = append(due, acct)
				delete(h.noticeAt, acct)
			}
		}
		h.mu.Unlock()
		slices.Sort(due)
		for _, acct := range due {
			if a := cur.accounts[acct]; a != nil {
				cur.sendNotice(io, a)
			}
		}
		if len(ready) > 0 {
			// Settle drafts first, so the summary lists what really waits.
			cur.checkAllDrafts(io)
			reqs := make([]summaryReq, len(ready))
			for k, i := range ready {
				reqs[k] = summaryReq{account: dues[i].job.account, since: dues[i].since()}
			}
			// Each settled as soon as its send ends: one accepted is
			// recorded at once, so a kill part-way does not send it again
			// (see summaryJob).
			tried := make([]bool, len(ready))
			err := cur.sendSummaries(io, now, reqs, func(k int, err error) {
				tried[k] = true
				i := ready[k]
				dues[i] = d.summarySent(dues[i], now, err, io.Err() != nil)
			})
			if err != nil && slices.Contains(tried, false) {
				// Not one of the sends' errors: nothing was tried.
				d.log.Error("rendering daily summaries; retrying", "in", summaryRetry, "err", err)
			}
			for k, i := range ready {
				if !tried[k] {
					dues[i].at = now.Add(summaryRetry)
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// summarySent is s planned again after its send ended with err (nil:
// accepted). began is when the batch began (the loop's now), shutdown
// reports that the send's context was cancelled for a shutdown. How err is
// taken is package send's sorting (send.Error), not a reading of SMTP codes:
//   - Accepted, or maybe accepted (MaybeSent: the whole message written, no
//     reply read): recorded as sent. A maybe is logged at Warn and not sent
//     again: retried every summaryRetry, a reply lost each time (a slow
//     content filter outlasting submitOwn's timeout) would deliver a copy
//     each time, up to ~60 a day; at most this one is lost instead
//     (doc.go: a MaybeSent is never resent blindly).
//   - Permanent (a 5xx to RCPT or DATA; send never counts an authentication
//     failure as permanent): not tried again that local day (s.day), and
//     not recorded as sent, so its next business day tries again, as does
//     a restart or a reload the same day (after the fix). Logged once, at
//     Error: a retry would fail the same way, each time after a drafts check
//     that connects to every account with drafts.
//   - Anything else (4xx, connection or authentication trouble, a cut
//     connection before the end of DATA): tried again summaryRetry after
//     began, the same local day only (current).
//
// The record is dated by the clock when the server accepted the summary,
// not by began: the drafts check and the send can take minutes, so a retry
// begun at 23:58 may be accepted at 00:01, and that summary is the new
// day's; dated by began, the new day's own would follow it, two on one
// local day. (Checking the day again right before submitting would still
// leave the send itself, up to submitOwn's timeout, across midnight.)
func (d *Daemon) summarySent(s summaryDue, began time.Time, err error, shutdown bool) summaryDue {
	at := d.clk.Now()
	var se *send.Error
	isSendErr := errors.As(err, &se)
	log := d.log.With("summary", s.job)
	switch {
	case err == nil || isSendErr && se.MaybeSent:
		if err != nil {
			log.Warn("daily summary may not have arrived (the server read it all, its reply was lost); counted as sent, not sent again", "err", err)
		}
		rec := s.sent(at)
		d.putSummaryRecord(s.job.key(), rec)
		return planSummary(s.job, rec, at)
	case isSendErr && se.Permanent:
		log.Error("daily summary refused by the server; not tried again until its next business day", "day", s.day, "code", se.Code, "err", err,
			"hint", "check the recipients (the sender's own address; [summary] leads for the team summary) against the server's reply; a reload sends it again today")
		// Planned as if s.day's summary had gone out, but not recorded:
		// s.rec's slot still starts the next one's "last day".
		skip := s.rec
		skip.Day, skip.Zone = s.day, s.job.zone()
		return planSummary(s.job, skip, at)
	case shutdown:
		log.Debug("daily summary not sent: shutting down", "err", err)
		s.at = began.Add(summaryRetry)
		return s
	default:
		log.Error("sending daily summary; retrying", "in", summaryRetry, "err", err)
		s.at = began.Add(summaryRetry)
		return s
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// SummaryMail is one rendered daily summary and who gets it.
type SummaryMail struct {
	Account string // the account whose SMTP and address send it
	From    message.Address
	To      []message.Address
	Team    bool
	*summary.Output
}

// summaryReq asks for one summary: a sender's own (account) or the team's
// (""), and the start of its "last day".
type summaryReq struct {
	account string
	since   time.Time
}

// Summaries renders the day's summaries at now from the store: one per
// account (unless [summary] senders = false), and the team's when leads
// are configured. Each summary's "last day" starts at its own previous
// send as recorded in the store; since is for one without a record (zero:
// 24 hours ago). It does no network I/O, so `followupd summary -print`
// can use it.
func Summaries(cfg *config.Config, db *store.DB, now, since time.Time) ([]SummaryMail, error) {
	var reqs []summaryReq
	add := func(account string) {
		s := since
		if rec, _, err := readSummaryRecord(db, summaryKey(account)); err == nil && !rec.Slot.IsZero() {
			s = minTime(rec.Slot, now) // not after now: a clock that ran ahead
		}
		reqs = append(reqs, summaryReq{account: account, since: s})
	}
	if sendersGetSummary(cfg) {
		for _, a := range cfg.Accounts {
			add(a.Name)
		}
	}
	if len(cfg.SummaryMail.Leads) > 0 {
		add("")
	}
	return renderSummaries(cfg, db, now, reqs)
}

// renderSummaries renders the summaries reqs asks for, in that order; a
// sender's in the account's zone, the team's in the top-level one.
func renderSummaries(cfg *config.Config, db *store.DB, now time.Time, reqs []summaryReq) ([]SummaryMail, error) {
	all, err := db.List(store.Filter{})
	if err != nil {
		return nil, fmt.Errorf("summary: listing follow-ups: %w", err)
	}
	var fs []*store.FollowUp
	for _, f := range all {
		if f.State.Terminal() && f.State != store.StateUncertain && len(f.History) > 0 && now.Sub(f.History[len(f.History)-1].At) > summaryKeep {
			continue
		}
		fs = append(fs, f)
	}
	senders := map[string]string{}
	for _, a := range cfg.Accounts {
		name := a.DisplayName
		if name == "" {
			name = a.Address
		}
		senders[a.Name] = name
	}
	steps := map[string]int{}
	for _, r := range cfg.Rules {
		steps[r.Name] = len(r.Steps)
	}
	from := func(a *config.Account) message.Address {
		return message.Address{Name: "followupd", Addr: a.Address}
	}
	var out []SummaryMail
	for _, req := range reqs {
		if req.account == "" {
			a := cfg.SummaryAccount()
			if a == nil {
				return out, errors.New("summary: no account to send the team summary from")
			}
			o, err := summary.Render(summary.Data{Title: "Sales team", Team: true, Senders: senders, Steps: steps, FollowUps: fs, Since: req.since}, now, cfg.Location(nil))
			if err != nil {
				return nil, err
			}
			var to []message.Address
			for _, l := range cfg.SummaryMail.Leads {
				to = append(to, message.Address{Addr: l})
			}
			out = append(out, SummaryMail{Account: a.Name, From: from(a), To: to, Team: true, Output: o})
			continue
		}
		a := cfg.Account(req.account)
		if a == nil {
			return nil, fmt.Errorf("summary: no account %q", req.account)
		}
		var own []*store.FollowUp
		for _, f := range fs {
			if f.Account == a.Name {
				own = append(own, f)
			}
		}
		o, err := summary.Render(summary.Data{Title: senders[a.Name], Senders: senders, Steps: steps, FollowUps: own, Since: req.since}, now, cfg.Location(a))
		if err != nil {
			return nil, err
		}
		out = append(out, SummaryMail{Account: a.Name, From: from(a), To: []message.Address{{Name: a.DisplayName, Addr: a.Address}}, Output: o})
	}
	return out, nil
}

// SendSummaries renders and sends every summary now, through each
// account's SMTP, whatever their schedules (`followupd summary -now`); it
// records nothing, so the scheduled ones still go out. A failure of one
// does not stop the others; the errors are joined.
func (d *Daemon) SendSummaries(ctx context.Context) error {
	cur := d.current()
	now := d.clk.Now()
	mails, err := Summaries(cur.cfg, d.db, now, LastSummary(d.db))
	if err != nil {
		return err
	}
	return cur.submitSummaries(ctx, now, mails, nil)
}

// sendSummaries renders and sends the summaries reqs asks for at now,
// calling done with the index in reqs of each one tried and how its send
// ended, right after it did (nothing is tried when one fails to render).
func (d *Daemon) sendSummaries(ctx context.Context, now time.Time, reqs []summaryReq, done func(int, error)) error {
	mails, err := renderSummaries(d.cfg, d.db, now, reqs)
	if err != nil {
		return err
	}
	return d.submitSummaries(ctx, now, mails, done)
}

// submitSummaries sends rendered summaries, calling done (when not nil)
// with the index in mails of each one and how its send ended (nil:
// accepted), right after it did; a failure of one does not stop the
// others, the errors are joined.
func (d *Daemon) submitSummaries(ctx context.Context, now time.Time, mails []SummaryMail, done func(int, error)) error {
	var errs []error
	for k, m := range mails {
		a := d.accounts[m.Account]
		var err error
		if a == nil {
			err = fmt.Errorf("summary: account %s not running", m.Account)
		} else {
			msg := &send.Message{
				From: m.From, To: m.To, Subject: m.Subject, Date: now, Text: m.Text, HTML: m.HTML, Kind: "summary",
				MessageID: message.NewOwnMessageID(domainOf(a.cfg.Address), 0, 0),
			}
			if err = d.submitOwn(ctx, a, msg); err != nil {
				err = fmt.Errorf("summary to %s: %w", addrs(m.To), err)
			}
		}
		if done != nil {
			done(k, err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.log.Info("daily summary sent", "account", a.cfg.Name, "to", addrs(m.To), "team", m.Team, "subject", m.Subject)
		d.emit(Event{Account: a.cfg.Name, Kind: "summary", Text: fmt.Sprintf("summary to %s: %s", addrs(m.To), m.Subject)})
	}
	return errors.Join(errs...)
}

// submitOwn builds and submits one of followupd's own messages (never in
// dry-run: an account in dry-run mode still gets its summary and notices,
// which go to its own people, never to clients).
func (d *Daemon) submitOwn(ctx context.Context, a *account, m *send.Message) error {
	raw, err := send.BuildMessage(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return a.sub.SubmitMessage(ctx, m, raw)
}

// sendNotice tells the account's sender how many reminders wait in Drafts.
func (d *Daemon) sendNotice(ctx context.Context, a *account) {
	fs, err := d.db.InState(store.StateDraft)
	if err != nil {
		d.log.Error("listing drafts for the notice", "account", a.cfg.Name, "err", err)
		return
	}
	var drafts []*store.FollowUp
	for _, f := range fs {
		if f.Account == a.cfg.Name {
			drafts = append(drafts, f)
		}
	}
	if len(drafts) == 0 {
		return // all handled before the notice went out
	}
	now := d.clk.Now()
	last, _ := d.metaTime(metaNoticePfx + a.cfg.Name)
	fresh := 0
	loc := a.cal.Location()
	var b strings.Builder
	subject := fmt.Sprintf("%d reminders are waiting in Drafts", len(drafts))
	if len(drafts) == 1 {
		subject = "1 reminder is waiting in Drafts"
	}
	fmt.Fprintf(&b, "%s, ready to send as replies in their threads.\n\n", subject)
	b.WriteString("Open your Drafts folder and send each one as it is, or edit it first. Delete a draft to skip\nthat reminder; the next step (if any) is then planned as usual. Unsent drafts are listed\nin your daily summary.\n\n")
	for _, f := range drafts {
		at := f.History[len(f.History)-1].At
		mark := " "
		if at.After(last) {
			fresh++
			mark = "*"
		}
		to := ""
		if len(f.To) > 0 {
			to = f.To[0].Addr
		}
		fmt.Fprintf(&b, "%s %s  reminder %d to %s: %s\n", mark, at.In(loc).Format("Mon 02 Jan 15:04"), f.Step, to, f.Subject)
	}
	if fresh > 0 && fresh < len(drafts) {
		fmt.Fprintf(&b, "\n* new since the last notice (%d)\n", fresh)
	}
	b.WriteString("\n-- \nfollowupd, approval mode\n")
	msg := &send.Message{
		From: message.Address{Name: "followupd", Addr: a.cfg.Address}, To: []message.Address{{Name: a.cfg.DisplayName, Addr: a.cfg.Address}},
		Subject: subject, Date: now, Text: b.String(), Kind: "approval-notice",
		MessageID: message.NewOwnMessageID(domainOf(a.cfg.Address), 0, 0),
	}
	if err := d.submitOwn(ctx, a, msg); err != nil {
		d.log.Warn("sending approval notice; retrying in an hour", "account", a.cfg.Name, "err", err)
	} else {
		d.log.Info("approval notice sent", "account", a.cfg.Name, "drafts", len(drafts))
		d.emit(Event{Account: a.cfg.Name, Kind: "notice", Text: subject})
	}
	// Paced either way: a failing server does not get a notice a minute.
	d.putMetaTime(metaNoticePfx+a.cfg.Name, now)
}

// checkAllDrafts settles every account's drafted reminders; it reports
// whether a draft was missed and needs the confirming re-check.
func (d *Daemon) checkAllDrafts(ctx context.Context) bool {
	fs, err := d.db.InState(store.StateDraft)
	if err != nil {
		d.log.Error("listing drafts", "err", err)
		return false
	}
	byAcct := map[string][]*store.FollowUp{}
	for _, f := range fs {
		byAcct[f.Account] = append(byAcct[f.Account], f)
	}
	retry := false
	names := make([]string, 0, len(byAcct))
	for n := range byAcct {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		a := d.accounts[n]
		if a == nil {
			continue
		}
		r, err := d.checkDrafts(ctx, a, byAcct[n])
		if err != nil {
			d.log.Warn("checking drafts", "account", n, "err", err)
		}
		retry = retry || r
	}
	return retry
}

// checkDrafts looks up each drafted reminder of a: still in Drafts ->
// nothing; in Sent (our Message-ID) -> the sender sent it (draft-sent);
// neither, and no unprocessed message in Sent cites the thread -> missed;
// missed again draftGoneConfirm later -> the sender deleted it, the step
// is skipped (draft-gone).
func (d *Daemon) checkDrafts(ctx context.Context, a *account, drafts []*store.FollowUp) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		var err error
		retry, err = d.checkDraftsOn(ctx, c, a, drafts)
		return err
	})
	return retry, err
}

// checkDraftsOn is checkDrafts on an open connection.
func (d *Daemon) checkDraftsOn(ctx context.Context, c *imapclient.Client, a *account, drafts []*store.FollowUp) (retry bool, err error) {
	sentBox, draftsBox, err := d.folders(ctx, c, a)
	if err != nil {
		return false, err
	}
	if draftsBox == "" {
		return false, errNoFolder(a, "Drafts")
	}
	h := d.house
	for _, f := range drafts {
		log := d.log.With("account", a.cfg.Name, "id", f.ID, "msgid", f.MessageID, "step", f.Step)
		in, err := imapwatch.FindMessageID(ctx, c, draftsBox, f.SendID)
		if err != nil {
			return retry, err
		}
		if in {
			h.mu.Lock()
			delete(h.missing, f.ID)
			h.mu.Unlock()
			continue
		}
		if sentBox != "" {
			sent, err := imapwatch.FindMessageID(ctx, c, sentBox, f.SendID)
			if err != nil {
				return retry, err
			}
			if sent {
				// The watcher may not have seen it yet; the same transition.
				if err := d.ownCopySeen(a, &message.Record{MessageID: f.SendID}); err != nil {
					return retry, err
				}
				continue
			}
			// An edited draft sent under another Message-ID, not yet
			// processed by the watcher: wait for it.
			uids, err := imapwatch.SearchReplies(ctx, c, sentBox, append([]string{f.MessageID}, f.Sent...))
			if err != nil {
				return retry, err
			}
			st, err := d.db.SyncState(a.cfg.Name, sentBox)
			if err != nil {
				return retry, err
			}
			if slices.ContainsFunc(uids, func(u uint32) bool { return u > st.LastUID }) {
				log.Info("draft gone from Drafts; an unprocessed message in Sent cites the thread, waiting for it")
				retry = true
				continue
			}
		}
		now := d.clk.Now()
		h.mu.Lock()
		first, seen := h.missing[f.ID]
		if !seen {
			h.missing[f.ID] = now
		}
		h.mu.Unlock()
		if !seen || now.Sub(first) < draftGoneConfirm {
			log.Info("drafted reminder not in Drafts; confirming on the next check")
			retry = true
			continue
		}
		d.draftGone(a, f, now)
		h.mu.Lock()
		delete(h.missing, f.ID)
		h.mu.Unlock()
	}
	return retry, nil
}

// draftGone records that the sender deleted a drafted reminder: the step
// is skipped and the chain moves on (next step, or finished).
func (d *Daemon) draftGone(a *account, f *store.FollowUp, now time.Time) {
	sendID := f.SendID
	nf, err := d.db.Transition(f.ID, store.EvDraftGone, now, "draft "+sendID+" deleted by the sender: step skipped", func(f *store.FollowUp) error {
		if f.State != store.StateDraft || f.SendID != sendID {
			return store.ErrNoChange
		}
		f.SendID = "" // never sent: not one of the thread's reminders
		return d.advance(a, f, now)
	})
	if errors.Is(err, store.ErrNoChange) || isBadTransition(err) {
		return
	}
	if err != nil {
		d.log.Error("recording deleted draft", "account", a.cfg.Name, "id", f.ID, "err", err)
		return
	}
	d.log.Info("draft deleted by the sender; step skipped", "account", a.cfg.Name, "id", f.ID, "step", f.Step, "next", nf.State)
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "skipped", Step: f.Step,
		Text: fmt.Sprintf("draft of reminder %d for %q deleted by the sender: skipped", f.Step, nf.Subject)})
	d.reschedule(nf)
}

// LastSummary is the slot of the last team summary the daemon sent (of
// every summary, in a store from before each had its own schedule; zero:
// none yet): the start of the next summary's "last day" when it has no
// record of its own.
func LastSummary(db *store.DB) time.Time {
	rec, _, err := readSummaryRecord(db, metaSummaryLast)
	if err != nil {
		return time.Time{}
	}
	return rec.Slot
}
